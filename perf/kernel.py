"""./perf/run kernel: cachetd and the stock memcached side by side over kernel TCP on loopback,
driven by cachet-load, one scenario of perf/scenarios at a time; a RESULT line per scenario."""

import os

import harness
from perf.bench import (NOISY, add_binary_arguments, add_run_arguments, cpu_list, fmt_f,
                        fmt_rate, med, memcached_style, print_config, resolve_binaries,
                        pick_scenarios, run_generator, scenario_table, selftest, stamp_dir,
                        wait_tcp_version, write_results)

HELP = "cachetd vs memcached over kernel TCP (loopback)"


def add_arguments(k):
  k.add_argument("scenarios", nargs="*", help="scenario names (default: all in perf/scenarios)")
  add_binary_arguments(k)
  add_run_arguments(k, duration=5)
  k.add_argument("--threads", type=int, default=1, help="server -t")
  k.add_argument("--memory", type=int, default=1024, help="server -m (MB)")
  k.add_argument("--server-cpus", default="0", help="taskset list for the servers")
  k.add_argument("--loadgen-cpus", default="1", help="taskset list for cachet-load")
  k.add_argument("--loadgen-threads", type=int, default=1)


def list_scenarios():
  for n, (d, a) in load_scenarios().items():
    print(f"{n:<14} {d}\n{'':<14} {' '.join(a)}")


def load_scenarios():
  return scenario_table("scenarios")


def run_loadgen(args, server, scen_args, json_path, log_path):
  """Runs cachet-load once against server; samples the server's CPU over the measured window."""
  cmd = ["taskset", "-c", args.loadgen_cpus, str(args.loadgen), "--host", "127.0.0.1",
         "--port", str(server.port), "--threads", str(args.loadgen_threads), "--preload",
         "--preload-timeout", "60", "--duration", str(args.duration), "--warmup",
         str(args.warmup), "--json", str(json_path), "--marks"] + scen_args
  return run_generator(args, server, cmd, json_path, log_path)


def run_scenario(args, name, desc, scen_args, stamp_dir, rows):
  """Fresh servers, both targets alternately for --repeat rounds. Returns (summary, ok)."""
  print(f"\n== {name}: {desc}\n   cachet-load {' '.join(scen_args)}", flush=True)
  targets = {"cachet": str(args.cachetd), "memcached": str(args.memcached)}
  servers, why = {}, []
  for t, path in targets.items():
    port = harness.free_port()
    servers[t] = memcached_style(t, path, args, args.server_cpus,
                                 stamp_dir / f"{name}-{t}-server.log",
                                 ["-p", str(port), "-U", "0"])
    servers[t].port = port
  for t, s in servers.items():
    err = wait_tcp_version(s, s.port)
    if err:
      why.append(f"{t} did not start: {err} (cmd: {' '.join(s.cmd)}; log {s.log})")
  runs = {t: [] for t in targets}
  if not why:
    for rep in range(args.repeat):
      order = ["cachet", "memcached"] if rep % 2 == 0 else ["memcached", "cachet"]
      for t in order:
        s = servers[t]
        if not s.alive():
          continue
        base = stamp_dir / f"{name}-{t}-{rep + 1}"
        rc, res, srv, other, out = run_loadgen(args, s, scen_args, base.with_suffix(".json"),
                                               base.with_suffix(".log"))
        r = (res or {}).get("result", {})
        lat = (res or {}).get("latency_us", {}).get("all", {})
        row = {"scenario": name, "target": t, "rep": rep + 1, "rc": rc,
               "key_ops_per_sec": r.get("key_ops_per_sec"),
               "requests_per_sec": r.get("requests_per_sec"), "p50_us": lat.get("p50"),
               "p99_us": lat.get("p99"), "p999_us": lat.get("p999"),
               "hit_ratio": r.get("hit_ratio"), "errors": r.get("errors"),
               "server_cpu": srv, "loadgen_cpu": r.get("generator_cpu_util"),
               "other_cpu": other}
        rows.append(row)
        runs[t].append(row)
        print(f"   {t:<9} run {rep + 1}: {fmt_rate(row['key_ops_per_sec'])} key-ops/s "
              f"p50 {fmt_f(row['p50_us'], '.1f')} us p99 {fmt_f(row['p99_us'], '.1f')} us "
              f"cpu srv {fmt_f(srv, '.0%')} gen {fmt_f(row['loadgen_cpu'], '.0%')} "
              f"other {fmt_f(other, '.0%')}{' (noisy)' if (other or 0) > NOISY else ''}"
              f"{'' if rc == 0 else f'  FAILED (exit {rc})'}", flush=True)
        if rc != 0:
          why.append(f"{t} run {rep + 1}: cachet-load exit {rc}: "
                     + (r.get("first_error") or out.strip().splitlines()[-1:] or ["?"])[-1])
        if not s.alive():
          why.append(f"{t} server died during run {rep + 1} (log {s.log})")
  for s in servers.values():
    s.stop()
  summary = {}
  # Medians over the quiet runs (other jobs took <= NOISY of a CPU) when both targets have
  # some: a burst of someone else's work says nothing about either target. Otherwise over all
  # runs of both, so that neither target is judged on quieter runs than the other.
  ok_runs = {t: [r for r in runs[t] if r["rc"] == 0] for t in targets}
  quiet_runs = {t: [r for r in rs if r["other_cpu"] is not None and r["other_cpu"] <= NOISY]
                for t, rs in ok_runs.items()}
  use_quiet = all(quiet_runs.values())
  for t in targets:
    rs, quiet = ok_runs[t], quiet_runs[t] if use_quiet else []
    summary[t] = {k: med([r[k] for r in (quiet or rs)]) for k in
                  ("key_ops_per_sec", "requests_per_sec", "p50_us", "p99_us", "p999_us",
                   "hit_ratio", "server_cpu", "loadgen_cpu", "other_cpu")}
    summary[t]["runs"] = [r["key_ops_per_sec"] for r in runs[t]]
    summary[t]["median_of"] = (f"{len(quiet)} quiet runs" if quiet
                               else f"all {len(rs)} runs (some noisy)")
  c, m = summary["cachet"]["key_ops_per_sec"], summary["memcached"]["key_ops_per_sec"]
  ratio = c / m if c is not None and m else None
  summary["ratio"] = ratio
  print(f"   {'target':<10}{'key-ops/s':>12}{'req/s':>12}{'p50 us':>9}{'p99 us':>9}{'hit':>7}"
        f"{'srv cpu':>9}{'gen cpu':>9}{'other':>7}   runs (key-ops/s)")
  for t in targets:
    s = summary[t]
    print(f"   {t:<10}{fmt_rate(s['key_ops_per_sec']):>12}{fmt_rate(s['requests_per_sec']):>12}"
          f"{fmt_f(s['p50_us'], '.1f'):>9}{fmt_f(s['p99_us'], '.1f'):>9}"
          f"{fmt_f(s['hit_ratio'], '.3f'):>7}{fmt_f(s['server_cpu'], '.0%'):>9}"
          f"{fmt_f(s['loadgen_cpu'], '.0%'):>9}{fmt_f(s['other_cpu'], '.0%'):>7}"
          f"   {' '.join(fmt_rate(x) for x in s['runs'])}; median of {s['median_of']}")
  lat = [(k, summary["memcached"][k] / summary["cachet"][k])
         for k in ("p50_us", "p99_us") if summary["cachet"][k] and summary["memcached"][k]]
  print(f"   ratio (>1: cachet better): throughput {fmt_f(ratio, '.3f')}"
        + "".join(f", {k[:-3]} {v:.3f}" for k, v in lat))
  for w in why:
    print(f"   FAILED: {w}")
  if ratio is not None:
    print(f"RESULT {name} cachet={c:.0f} memcached={m:.0f} ratio={ratio:.3f}", flush=True)
  return summary, not why


def run(args):
  scenarios = load_scenarios()
  names = pick_scenarios(scenarios, args.scenarios, "kernel")
  args.pinned = cpu_list(args.server_cpus) | cpu_list(args.loadgen_cpus)
  resolve_binaries(args)
  selftest(args)
  stamp, base, run_dir = stamp_dir(args, "kernel")
  version = harness.run_tool([args.memcached, "-V"], 10)[1].strip()
  config = {"scenarios": names, "cachetd": str(args.cachetd),
            "memcached": f"{args.memcached} ({version})", "loadgen": str(args.loadgen),
            "server_flags": f"-t {args.threads} -m {args.memory} -c 4096 -U 0",
            "server_cpus": args.server_cpus, "loadgen_cpus": args.loadgen_cpus,
            "loadgen_threads": args.loadgen_threads, "duration_s": args.duration,
            "warmup_s": args.warmup, "repeat": args.repeat, "metric": "key ops/s (median of runs)",
            "loadavg_at_start": os.getloadavg()[0], "cpus": os.cpu_count(), "started": stamp}
  print_config("perf/run kernel: cachetd vs stock memcached, kernel TCP on loopback", config,
               "other work on this machine will add noise (both targets alternate, so it "
               "affects them alike)")
  rows, summaries, all_ok = [], {}, True
  for n in names:
    summaries[n], ok = run_scenario(args, n, *scenarios[n], run_dir, rows)
    all_ok = all_ok and ok
  write_results(base, config, summaries, rows, all_ok)
  return 0 if all_ok else 1
