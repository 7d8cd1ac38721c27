"""./perf/run dpdk: cachetd's DPDK dataplane over net_memif against the stock memcached over
kernel UDP, with dpdk-testpmd forwarding over the same memif link as the packet-I/O ceiling; one
scenario of perf/scenarios-dpdk at a time, a RESULT line per scenario (perf/README.md)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness
import hugepages
from perf.bench import (NOISY, Proc, add_binary_arguments, add_run_arguments, fmt_f,
                        fmt_rate, med, memcached_style, print_config, resolve_binaries,
                        pick_scenarios, run_generator, scenario_table, selftest, stamp_dir,
                        stop_all, write_results)

HELP = "cachetd on DPDK/net_memif vs memcached on kernel UDP, with a dpdk-testpmd ceiling"


def add_arguments(d):
  d.add_argument("scenarios", nargs="*", help="scenario names (default: all in perf/scenarios-dpdk)")
  add_binary_arguments(d)
  d.add_argument("--testpmd", default="/usr/bin/dpdk-testpmd")
  d.add_argument("--forward-mode", default="macswap", choices=["macswap", "5tswap"],
                 help="testpmd forwarding for the ceiling")
  d.add_argument("--ceiling-window", type=int, default=256,
                 help="frames in flight for the testpmd ceiling (enough to be throughput-bound)")
  add_run_arguments(d, duration=4)
  d.add_argument("--memory", type=int, default=1024, help="server -m (MB)")
  d.add_argument("--server-cpu", type=int, default=0, help="CPU (and EAL lcore) of the servers")
  d.add_argument("--loadgen-cpu", type=int, default=1, help="CPU (and EAL lcore) of cachet-load")
  d.add_argument("--no-huge", action="store_true",
                 help="4 KB pages for EAL and cachetd's arena (default: reserve 2 MB hugepages "
                      "for both for the run, as a deployment would, when root allows it)")


def list_scenarios():
  for n, (d, a, frame) in load_dpdk_scenarios().items():
    print(f"{n:<14} {d}\n{'':<14} {' '.join(a)}; ceiling frames {frame} B")


CACHET_IP, GEN_IP = "10.214.0.2", "10.214.0.1"
DPDK_UDP_PORT = 11211
def wait_ready(proc, path, line, timeout=20.0, settle=3.0):
  """Until the memif socket exists and the server's log shows `line` (its port is started), or
  the socket has existed for `settle` seconds (the generator reconnects until its link is up)."""
  deadline, seen = time.monotonic() + timeout, None
  while time.monotonic() < deadline:
    if not proc.alive():
      return f"exited with status {proc.proc.returncode}: {proc.log_tail(600)}"
    if os.path.exists(path):
      seen = seen or time.monotonic()
      if line in proc.log_tail(100000) or time.monotonic() - seen > settle:
        return None
    time.sleep(0.05)
  return f"{path} did not appear within {timeout:.0f} s"


def wait_udp_version(proc, port, timeout=15.0):
  """memcached answers `version` over UDP (8-byte frame header)."""
  deadline = time.monotonic() + timeout
  with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.settimeout(0.2)
    while time.monotonic() < deadline:
      if not proc.alive():
        return f"exited with status {proc.proc.returncode}"
      try:
        s.sendto(b"\x00\x01\x00\x00\x00\x01\x00\x00version\r\n", ("127.0.0.1", port))
        if b"VERSION" in s.recv(2048):
          return None
      except OSError:
        pass
  return f"not answering `version` over UDP on port {port} after {timeout:.0f} s"


def load_dpdk_scenarios():
  return {n: (desc, argv, int(frame))
          for n, (desc, argv, frame) in scenario_table("scenarios-dpdk").items()}


def server_busy(res):
  """Share of cachetd's CPU time in the window that was not spent in empty polls:
  1 - (empty polls in the window / empty polls per CPU second) / CPU seconds in the window,
  where empty polls per CPU second come from a pause with no load that the generator measures
  before its preload (`stats` twice, 300 ms apart; rusage gives the CPU time). Counting CPU time
  rather than wall time keeps the estimate honest when other jobs preempt cachetd. Single-lcore
  cachetd (the process's other threads sleep). None without --server-stats data."""
  st, idle = (res or {}).get("server_stats", {}), (res or {}).get("server_idle_rate", {})
  polls = sum(v for k, v in st.items() if k.startswith("dpdk:lcore") and k.endswith(":idle_polls"))
  idle_polls = sum(v for k, v in idle.items()
                   if k.startswith("dpdk:lcore") and k.endswith(":idle_polls"))
  cpu = (st.get("rusage_user_us", 0) + st.get("rusage_system_us", 0)) / 1e6
  idle_cpu = (idle.get("rusage_user_us", 0) + idle.get("rusage_system_us", 0)) / 1e6
  if not polls or not idle_polls or cpu <= 0 or idle_cpu <= 0:
    return None
  per_cpu_s = idle_polls / idle_cpu  # both are per second of the pause: the ratio is per CPU s
  return min(max(1 - (polls / per_cpu_s) / cpu, 0.0), 1.0)


def server_ns_per_request(res):
  """cachetd's busy time per request in the window (its lcores' busy_us over their requests):
  what one request costs the dataplane core, whatever the generator could offer. None without
  --server-stats data."""
  st = (res or {}).get("server_stats", {})
  busy = sum(v for k, v in st.items() if k.startswith("dpdk:lcore") and k.endswith(":busy_us"))
  reqs = sum(v for k, v in st.items() if k.startswith("dpdk:lcore") and k.endswith(":requests"))
  return busy * 1000 / reqs if busy > 0 and reqs > 0 else None


def verdict(srv_busy, gen_wait):
  """Which side limited a closed-loop run: the one that did not wait for the other. testpmd
  has no busy figure: with a generator that hardly waits, the generator was the limit."""
  if gen_wait is None:
    return "?"
  server_full = srv_busy is not None and srv_busy >= 0.9
  if server_full and gen_wait >= 0.1:
    return "server"
  if gen_wait < 0.1:
    return "both" if server_full else "generator"
  return "neither (window/latency or noise)"


class DpdkBench:
  def __init__(self, args, stamp_dir):
    self.args, self.dir = args, stamp_dir
    self.tmp = tempfile.mkdtemp(prefix="cachet-perf-memif-")
    self.tag = f"{os.getpid() % 100000}"
    self.prefixes = set()

  def eal(self, lcore, role, sock, who):
    prefix = f"cachet-perf-{who}{self.tag}"
    self.prefixes.add(prefix)
    return (f"-l {lcore} --no-pci {self.args.eal_mem} --file-prefix {prefix} --log-level=warning "
            f"--vdev=net_memif0,role={role},socket={sock},socket-abstract=no")

  def arena(self):
    """With hugepages, cachetd's arena goes on the run's hugetlbfs, as in production (None
    without). A named arena outlives its process by design: drop_arena removes it."""
    return os.path.join(self.args.huge_dir, "cachet-perf-arena") if self.args.huge_dir else None

  def drop_arena(self):
    if self.arena() and os.path.exists(self.arena()):
      os.unlink(self.arena())

  def arena_args(self):
    """cachetd's arena flags: a fresh arena on the hugetlbfs for each run, else private."""
    self.drop_arena()
    return ["--shm", self.arena()] if self.arena() else []

  def cleanup(self):
    shutil.rmtree(self.tmp, ignore_errors=True)
    self.drop_arena()  # the last run's
    for p in self.prefixes:  # the EAL runtime dirs of the processes this run started
      shutil.rmtree(f"/var/run/dpdk/{p}", ignore_errors=True)

  def gen_dpdk(self, sock, extra, json_path):
    a = self.args
    return ["taskset", "-c", str(a.loadgen_cpu), str(a.loadgen), "--dpdk-args",
            self.eal(a.loadgen_cpu, "client", sock, "g"), "--dpdk-ip", GEN_IP + "/24",
            "--dpdk-peer", CACHET_IP, "--port", str(DPDK_UDP_PORT), "--duration",
            str(a.duration), "--warmup", str(a.warmup), "--json", str(json_path), "--marks",
            "--dpdk-linger", "20"] + extra

  def run_against(self, srv, cmd, base):
    """Runs the generator against a DPDK server; when the generator has finished and lingers
    with its port open, records whether the server is still alive and SIGKILLs it, so that no
    memif teardown code runs while the other side is busy (perf/README.md, "memif teardown").
    The generator then sees its link go down and exits."""
    state = {"alive": None}

    def on_line(line):
      if line.startswith("cachet-load: lingering"):
        state["alive"] = srv.alive()
        srv.kill_now()

    out = run_generator(self.args, srv, cmd, Path(f"{base}.json"), f"{base}.log", on_line)
    alive = state["alive"] if state["alive"] is not None else srv.alive()
    return out, None if alive else f"{srv.target} died during the run (log {srv.log})"

  def run_cachet(self, name, scen_args, base):
    a = self.args
    sock = os.path.join(self.tmp, "cachet.sock")
    if os.path.exists(sock):
      os.unlink(sock)
    srv = Proc("cachet", ["taskset", "-c", str(a.server_cpu), str(a.cachetd), "--driver", "dpdk",
                          "--dpdk-args", self.eal(a.server_cpu, "server", sock, "s"),
                          "--dpdk-ip", CACHET_IP + "/24", "-U", str(DPDK_UDP_PORT), "-p", "0",
                          "-m", str(a.memory), "-v"] + self.arena_args(), f"{base}-server.log")
    out, fail = None, None
    try:
      err = wait_ready(srv, sock, "cachet info: cachetd")
      if err:
        fail = f"cachetd did not start: {err}"
      else:
        cmd = self.gen_dpdk(sock, ["--preload", "--preload-timeout", "60", "--server-stats"]
                            + scen_args, Path(f"{base}.json"))
        out, fail = self.run_against(srv, cmd, base)
    finally:
      srv.kill_now()
      srv.stop()
    return out, fail, srv

  def run_testpmd(self, name, scen_args, frame, base):
    a = self.args
    sock = os.path.join(self.tmp, "testpmd.sock")
    if os.path.exists(sock):
      os.unlink(sock)
    # testpmd needs a forwarding lcore besides its main one: both on the server CPU (the main
    # lcore only waits for stdin).
    eal = self.eal(a.server_cpu, "server", sock, "t").replace(
        f"-l {a.server_cpu} ", f"--lcores 0@{a.server_cpu},1@{a.server_cpu} ")
    cmd = ["taskset", "-c", str(a.server_cpu), a.testpmd] + eal.split() + [
        "--", f"--forward-mode={a.forward_mode}", "--total-num-mbufs=16384", "--burst=32"]
    srv = Proc("testpmd", cmd, f"{base}-server.log", stop_sig=signal.SIGINT,
               stdin=subprocess.PIPE)  # it runs until "enter" on stdin, or SIGINT
    out, fail = None, None
    try:
      err = wait_ready(srv, sock, "Press enter to exit")
      if err:
        fail = f"testpmd did not start: {err}"
      else:
        cmd = self.gen_dpdk(sock, ["--mode", "ceiling", "--frame-size", str(frame), "--window",
                                   str(a.ceiling_window)], Path(f"{base}.json"))
        out, fail = self.run_against(srv, cmd, base)
    finally:
      srv.kill_now()
      srv.stop()
    return out, fail, srv

  def run_memcached(self, srv, scen_args, base):
    a = self.args
    cmd = ["taskset", "-c", str(a.loadgen_cpu), str(a.loadgen), "--udp", "--host", "127.0.0.1",
           "--port", str(srv.port), "--udp-timeout", "0.2", "--preload", "--preload-timeout",
           "60", "--duration", str(a.duration), "--warmup", str(a.warmup), "--json",
           f"{base}.json", "--marks"] + scen_args
    out = run_generator(a, srv, cmd, Path(f"{base}.json"), f"{base}.log")
    return out, None if srv.alive() else f"memcached died (log {srv.log})", srv


def dpdk_row(name, target, rep, rc, res, srv_cpu, other):
  r = (res or {}).get("result", {})
  lat = (res or {}).get("latency_us", {}).get("all", {})
  row = {"scenario": name, "target": target, "rep": rep, "rc": rc,
         "key_ops_per_sec": r.get("key_ops_per_sec"), "requests_per_sec": r.get("requests_per_sec"),
         "packets_per_sec": None, "p50_us": lat.get("p50"), "p99_us": lat.get("p99"),
         "p999_us": lat.get("p999"), "hit_ratio": r.get("hit_ratio"), "errors": r.get("errors"),
         "timeouts": r.get("timeouts", r.get("lost")), "server_cpu": srv_cpu,
         "loadgen_cpu": r.get("generator_cpu_util"), "other_cpu": other,
         "gen_wait": r.get("generator_idle_share"), "srv_busy": None, "srv_ns_per_req": None}
  if target == "cachet":
    pkts = (r.get("rx_packets_per_sec") or 0) + (r.get("tx_packets_per_sec") or 0)
    row["packets_per_sec"] = pkts / 2 if pkts else None  # round-trip equivalents
    row["srv_busy"] = server_busy(res)
    row["srv_ns_per_req"] = server_ns_per_request(res)
  elif target == "testpmd":
    row["packets_per_sec"] = r.get("round_trips_per_sec")
    row["key_ops_per_sec"] = None
  return row


def run_dpdk_scenario(args, bench, name, desc, scen_args, frame, stamp_dir, rows):
  print(f"\n== {name}: {desc}\n   cachet-load {' '.join(scen_args)}; ceiling: {frame}-byte "
        f"frames, {args.ceiling_window} in flight, testpmd --forward-mode={args.forward_mode}",
        flush=True)
  targets = ["cachet", "memcached", "testpmd"]
  runs = {t: [] for t in targets}
  why = []
  mc_port = harness.free_port(udp_too=True)
  mc = memcached_style("memcached", args.memcached, args, str(args.server_cpu),
                       stamp_dir / f"{name}-memcached-server.log",
                       ["-p", "0", "-U", str(mc_port)])
  mc.port = mc_port
  err = wait_udp_version(mc, mc_port)
  if err:
    why.append(f"memcached did not start: {err} (cmd: {' '.join(mc.cmd)})")
  for rep in range(args.repeat if not err else 0):
    order = targets if rep % 2 == 0 else list(reversed(targets))
    for t in order:
      base = stamp_dir / f"{name}-{t}-{rep + 1}"
      if t == "cachet":
        out, fail, srv = bench.run_cachet(name, scen_args, base)
      elif t == "testpmd":
        out, fail, srv = bench.run_testpmd(name, scen_args, frame, base)
      else:
        out, fail, srv = bench.run_memcached(mc, scen_args, base)
      rc, res, srv_cpu, other, text = out if out else (None, None, None, None, "")
      row = dpdk_row(name, t, rep + 1, rc, res, srv_cpu, other)
      rows.append(row)
      runs[t].append(row)
      rate = (f"{fmt_rate(row['packets_per_sec'])} round trips/s" if t == "testpmd" else
              f"{fmt_rate(row['key_ops_per_sec'])} key-ops/s")
      extra = ""
      if t == "cachet":
        extra = (f" pkt/s {fmt_rate(row['packets_per_sec'])} srv busy "
                 f"{fmt_f(row['srv_busy'], '.0%')} {fmt_f(row['srv_ns_per_req'], '.0f')} ns/req")
      print(f"   {t:<9} run {rep + 1}: {rate} p50 {fmt_f(row['p50_us'], '.1f')} us "
            f"p99 {fmt_f(row['p99_us'], '.1f')} us{extra} gen wait {fmt_f(row['gen_wait'], '.0%')}"
            f" cpu srv {fmt_f(srv_cpu, '.0%')} gen {fmt_f(row['loadgen_cpu'], '.0%')} other "
            f"{fmt_f(other, '.0%')}{' (noisy)' if (other or 0) > NOISY else ''}"
            f"{'' if rc == 0 else f'  FAILED (exit {rc})'}", flush=True)
      if fail:
        why.append(f"{t} run {rep + 1}: {fail}")
      elif rc != 0:
        r = (res or {}).get("result", {})
        why.append(f"{t} run {rep + 1}: cachet-load exit {rc}: "
                   + (r.get("first_error") or (text.strip().splitlines() or ["?"])[-1]))
  mc.stop()
  ok_runs = {t: [r for r in runs[t] if r["rc"] == 0] for t in targets}
  quiet_runs = {t: [r for r in rs if r["other_cpu"] is not None and r["other_cpu"] <= NOISY]
                for t, rs in ok_runs.items()}
  use_quiet = all(quiet_runs.values())
  summary = {}
  keys = ("key_ops_per_sec", "requests_per_sec", "packets_per_sec", "p50_us", "p99_us",
          "p999_us", "hit_ratio", "server_cpu", "loadgen_cpu", "other_cpu", "gen_wait",
          "srv_busy", "srv_ns_per_req", "timeouts")
  for t in targets:
    rs = quiet_runs[t] if use_quiet else ok_runs[t]
    summary[t] = {k: med([r[k] for r in rs]) for k in keys}
    summary[t]["runs"] = [r["packets_per_sec" if t == "testpmd" else "key_ops_per_sec"]
                          for r in runs[t]]
    summary[t]["median_of"] = (f"{len(rs)} quiet runs" if use_quiet
                               else f"all {len(rs)} good runs (some noisy)")
    summary[t]["limit"] = verdict(summary[t]["srv_busy"], summary[t]["gen_wait"])
  c, m = summary["cachet"]["key_ops_per_sec"], summary["memcached"]["key_ops_per_sec"]
  cp, tp = summary["cachet"]["packets_per_sec"], summary["testpmd"]["packets_per_sec"]
  ratio = c / m if c and m else None
  ceiling = cp / tp if cp and tp else None
  summary["ratio"], summary["ceiling"] = ratio, ceiling
  print(f"   {'target':<10}{'key-ops/s':>12}{'req/s':>11}{'pkt/s':>11}{'p50 us':>8}{'p99 us':>9}"
        f"{'hit':>6}{'srv busy':>9}{'gen wait':>9}{'other':>6}  limit; runs")
  for t in targets:
    x = summary[t]
    print(f"   {t:<10}{fmt_rate(x['key_ops_per_sec']):>12}{fmt_rate(x['requests_per_sec']):>11}"
          f"{fmt_rate(x['packets_per_sec']):>11}{fmt_f(x['p50_us'], '.1f'):>8}"
          f"{fmt_f(x['p99_us'], '.1f'):>9}{fmt_f(x['hit_ratio'], '.3f'):>6}"
          f"{fmt_f(x['srv_busy'], '.0%'):>9}{fmt_f(x['gen_wait'], '.0%'):>9}"
          f"{fmt_f(x['other_cpu'], '.0%'):>6}  {x['limit'] if t != 'memcached' else '-'}; "
          f"{' '.join(fmt_rate(v) for v in x['runs'])} (median of {x['median_of']})")
  ns = summary["cachet"]["srv_ns_per_req"]
  if ns:
    print(f"   cachetd's core: {ns:.0f} ns busy per request (median), i.e. "
          f"{fmt_rate(1e9 / ns)} requests/s per dataplane core when never idle")
  print(f"   cachet/memcached {fmt_f(ratio, '.2f')}; cachet packet rate / testpmd "
        f"{fmt_f(ceiling, '.3f')} (pkt/s: round trips per second; cachet's = (rx + tx) / 2)")
  for w in why:
    print(f"   FAILED: {w}")
  if ratio is not None:
    print(f"RESULT {name} cachet={c:.0f} memcached={m:.0f} ratio={ratio:.3f} "
          f"ceiling={fmt_f(ceiling, '.3f')}", flush=True)
  return summary, not why


def run(args):
  scenarios = load_dpdk_scenarios()
  names = pick_scenarios(scenarios, args.scenarios, "dpdk")
  args.pinned = {args.server_cpu, args.loadgen_cpu}
  args.loadgen_threads = 1
  resolve_binaries(args, extra=(("dpdk-testpmd (Debian's dpdk-dev)", Path(args.testpmd)),))
  helptext = harness.run_tool([str(args.loadgen), "--help"], 10)[1]
  if "--dpdk-args" not in helptext:
    sys.exit(f"perf/run: {args.loadgen} has no DPDK transport (libdpdk-dev missing at configure?)")
  if os.geteuid() != 0:
    sys.exit("perf/run dpdk: DPDK's runtime directory needs root")
  selftest(args)
  stamp, base, run_dir = stamp_dir(args, "dpdk")
  huge_dir = None
  if not args.no_huge:
    # Two EAL instances of 512 MB at a time, and cachetd's arena (item memory plus its index).
    huge_dir = hugepages.reserve(600 + (args.memory + 128) // 2)
    if not huge_dir:
      print("perf/run dpdk: no hugepages could be reserved; using --no-huge and a 4 KB-page arena")
  args.huge_dir = huge_dir
  args.eal_mem = f"--huge-dir {huge_dir} -m 512" if huge_dir else "--no-huge -m 512"
  mc_version = harness.run_tool([args.memcached, "-V"], 10)[1].strip()
  dpdk_version = harness.run_tool(["pkg-config", "--modversion", "libdpdk"], 10)[1].strip() or "?"
  config = {"scenarios": names, "cachetd": str(args.cachetd), "loadgen": str(args.loadgen),
            "memcached": f"{args.memcached} ({mc_version}) -t 1 -U <port> -p 0, kernel UDP on "
                         "loopback", "testpmd": f"{args.testpmd} --forward-mode={args.forward_mode}",
            "dpdk": dpdk_version, "link": "net_memif (copy mode), one queue pair",
            "ceiling_window": args.ceiling_window,
            "eal_memory": args.eal_mem,
            "cachet_arena": "hugetlbfs (2 MB pages)" if huge_dir else "private memfd (4 KB pages)",
            "server_cpu": args.server_cpu,
            "loadgen_cpu": args.loadgen_cpu, "server_memory_mb": args.memory,
            "duration_s": args.duration, "warmup_s": args.warmup, "repeat": args.repeat,
            "metric": "key ops/s (median of runs); ceiling: round trips/s",
            "loadavg_at_start": os.getloadavg()[0], "cpus": os.cpu_count(), "started": stamp}
  print_config("perf/run dpdk: cachetd (DPDK, net_memif) vs stock memcached (kernel UDP, "
               "loopback), with dpdk-testpmd as the packet-I/O ceiling", config,
               "other work on this machine takes CPU from the busy-polling processes (see the "
               "`other` column)")
  bench = DpdkBench(args, run_dir)
  rows, summaries, all_ok = [], {}, True
  try:
    for n in names:
      desc, sargs, frame = scenarios[n]
      summaries[n], ok = run_dpdk_scenario(args, bench, n, desc, sargs, frame, run_dir, rows)
      all_ok = all_ok and ok
  finally:
    stop_all()
    bench.cleanup()
    if huge_dir:
      hugepages.release()
  write_results(base, config, summaries, rows, all_ok)
  return 0 if all_ok else 1
