"""What every ./perf/run subcommand shares: the packages it installs, where the binaries are,
server processes pinned with taskset (started and stopped through the integration harness), one
cachet-load run with the server's CPU sampled between its window marks, medians, formatting and
the result files."""

import csv
import datetime
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import harness

PERF = Path(__file__).resolve().parent
REPO = PERF.parent
NOISY = 0.10  # a run where other jobs used more than this share of a CPU is noisy
LOADGEN = []  # the cachet-load process in flight, if any


def ensure_packages():
  """Installs the Debian packages the benchmarks use (scripts/lib.sh, CACHET_PERF_PACKAGES)."""
  lib = REPO / "scripts" / "lib.sh"
  r = subprocess.run(["bash", "-c", f'source "{lib}" && ensure_packages '
                      '"${CACHET_PERF_PACKAGES[@]}"'])
  if r.returncode != 0:
    sys.exit("perf/run: the packages it needs could not be installed (scripts/lib.sh)")


def add_binary_arguments(p, loadgen=True):
  """--build, --cachetd, --loadgen, --memcached, --compile: where the binaries come from."""
  env = os.environ.get
  p.add_argument("--build", default=env("CACHET_BUILD", str(REPO / "build")),
                 help="build dir (env CACHET_BUILD)")
  p.add_argument("--cachetd", help="cachetd binary (default BUILD/dataplane/daemon/cachetd)")
  if loadgen:
    p.add_argument("--loadgen", help="cachet-load binary (default BUILD/perf/cachet-load)")
    p.add_argument("--compile", action="store_true", help="ninja -j2 the two binaries first")
  p.add_argument("--memcached", default="/usr/bin/memcached")


def add_run_arguments(p, duration):
  """--duration, --warmup, --repeat (environment fallbacks), --out, --no-selftest."""
  env = os.environ.get
  p.add_argument("--duration", type=float, default=float(env("PERF_DURATION", duration)),
                 help="measured s per run (env PERF_DURATION)")
  p.add_argument("--warmup", type=float, default=float(env("PERF_WARMUP", 1)),
                 help="warmup s per run (env PERF_WARMUP)")
  p.add_argument("--repeat", type=int, default=int(env("PERF_REPEAT", 3)),
                 help="runs per target (env PERF_REPEAT)")
  p.add_argument("--out", default=str(PERF / "results"))
  p.add_argument("--no-selftest", action="store_true", help="skip perf/selftest before measuring")


def resolve_binaries(args, extra=()):
  """Fills args.cachetd and args.loadgen from --build, builds them with --compile, and exits
  naming any binary (or `extra` (what, path)) that is missing."""
  build = Path(args.build)
  args.cachetd = Path(args.cachetd or build / "dataplane/daemon/cachetd")
  args.loadgen = Path(args.loadgen or build / "perf/cachet-load")
  if args.compile:
    subprocess.run(["ninja", "-C", str(build), "-j2", "perf/cachet-load",
                    "dataplane/daemon/cachetd"], check=True)
  for what, p in (("cachetd", args.cachetd), ("cachet-load", args.loadgen),
                  ("memcached", Path(args.memcached))) + tuple(extra):
    if not os.access(p, os.X_OK):
      sys.exit(f"perf/run: {what} not found at {p} (build it, or pass its path)")


def selftest(args):
  if not args.no_selftest:
    if subprocess.run([str(PERF / "selftest"), str(args.loadgen)]).returncode != 0:
      sys.exit("perf/run: the generator's self-check failed; numbers would not be trustworthy")


def scenario_table(name):
  """perf/<name>: one scenario a line, `name | description | cachet-load arguments [| ...]`,
  as {name: (description, [arguments], further columns...)}."""
  out = {}
  for line in (PERF / name).read_text().splitlines():
    if line.strip() and not line.lstrip().startswith("#"):
      n, desc, argv, *more = (x.strip() for x in line.split("|"))
      out[n] = (desc, argv.split(), *more)
  return out


def pick_scenarios(table, wanted, what):
  """The scenarios asked for (all when none), or exit naming the unknown ones."""
  names = wanted or list(table)
  bad = [n for n in names if n not in table]
  if bad:
    sys.exit(f"perf/run: unknown {what} scenario(s) {', '.join(bad)}; known: {', '.join(table)}")
  return names


def stamp_dir(args, kind):
  """(stamp, results base path, per-run directory) for one invocation."""
  stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
  d = Path(args.out) / f"{kind}-{stamp}"
  d.mkdir(parents=True, exist_ok=True)
  return stamp, Path(args.out) / f"{kind}-{stamp}", d


def print_config(title, config, note):
  print(title)
  for k, v in config.items():
    print(f"  {k:<17} {v}")
  if os.getloadavg()[0] > 0.5:
    print(f"  note: load average {os.getloadavg()[0]:.2f} before start; {note}")


def write_results(base, config, summaries, rows, ok):
  """<base>.json (configuration, summaries, every run) and <base>.csv (every run)."""
  base.with_suffix(".json").write_text(json.dumps(
      {"config": config, "summary": summaries, "runs": rows, "ok": ok}, indent=2) + "\n")
  with open(base.with_suffix(".csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["scenario"])
    w.writeheader()
    w.writerows(rows)
  print(f"\nresults: {base}.json {base}.csv (per-run logs and JSON in {base}/)")


class Proc:
  """A server process of a benchmark (cachetd, memcached, testpmd), pinned with taskset (which
  execs: the pid is the server's), started and stopped by pid through the integration harness
  (it dies with this process); `stop_sig` first, SIGKILL after 10 s."""

  def __init__(self, target, cmd, log, stop_sig=signal.SIGTERM, stdin=None):
    self.target, self.cmd, self.log, self.stop_sig = target, cmd, log, stop_sig
    Path(log).unlink(missing_ok=True)
    self.proc = harness.spawn(cmd, str(log), stdin=stdin)
    self.rc = None
    self.port = None

  def alive(self):
    return self.proc.poll() is None

  def cpu_seconds(self):
    try:
      with open(f"/proc/{self.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
      return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
      return None

  def kill_now(self):
    """SIGKILL: every thread stops at once and no teardown code runs (see perf/README.md,
    "memif teardown", for why the DPDK servers are stopped this way)."""
    if self.proc.poll() is None:
      self.proc.kill()
    self.proc.wait()

  def log_tail(self, n=1500):
    try:
      return Path(self.log).read_text(errors="replace")[-n:]
    except OSError:
      return ""

  def stop(self):
    self.rc = harness.stop_pid(self.proc, term_timeout=10, sig=self.stop_sig)
    return self.rc


def memcached_style(target, path, args, cpus, log, port_flags):
  """cachetd or memcached with memcached's flags (port_flags: -p/-U), pinned to `cpus`."""
  cmd = ["taskset", "-c", cpus, str(path)] + port_flags + [
      "-l", "127.0.0.1", "-m", str(args.memory), "-t", str(getattr(args, "threads", 1)),
      "-c", "4096"]
  if Path(path).name == "memcached" and os.geteuid() == 0:
    cmd += ["-u", "root"]  # memcached refuses to run as root without it
  return Proc(target, cmd, log)


def wait_tcp_version(proc, port, timeout=15.0):
  """None once the server answers `version` over TCP, else why not."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if not proc.alive():
      return f"exited with status {proc.proc.returncode}"
    try:
      with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"version\r\n")
        if s.recv(256).startswith(b"VERSION"):
          return None
    except OSError:
      pass
    time.sleep(0.05)
  return f"not answering `version` on port {port} after {timeout:.0f} s"


def stop_all(*_):
  for p in LOADGEN:
    if p.poll() is None:
      p.kill()
      p.wait()
  harness.stop_all()


def cpu_list(spec):
  """taskset list ("0", "0-1", "0,2") -> set of cpu numbers."""
  out = set()
  for part in spec.split(","):
    lo, _, hi = part.partition("-")
    out.update(range(int(lo), int(hi or lo) + 1))
  return out


def busy_seconds(cpus):
  """CPU time the given cpus spent not idle (user, system, irq, softirq, steal), in seconds."""
  total = 0
  with open("/proc/stat") as f:
    for line in f:
      if line.startswith("cpu") and line[3].isdigit():
        name, *vals = line.split()
        if int(name[3:]) in cpus:
          v = [int(x) for x in vals]
          total += sum(v) - v[3] - v[4]  # minus idle and iowait
  return total / os.sysconf("SC_CLK_TCK")


def run_generator(args, server, cmd, json_path, log_path, on_line=None):
  """Runs one cachet-load command (bounded by itself and a watchdog); samples the server's CPU
  and the pinned CPUs' busy time between its window marks. on_line(line) sees every line."""
  json_path.unlink(missing_ok=True)
  p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  LOADGEN[:] = [p]
  # The generator bounds itself; the watchdog is belt and braces.
  watchdog = threading.Timer(args.duration + args.warmup + 90, p.kill)
  watchdog.start()
  out, marks = [], {}
  for line in p.stdout:
    out.append(line)
    if on_line:
      on_line(line)
    if line.startswith("cachet-load: window "):
      marks[line.split()[-1]] = (time.monotonic(), server.cpu_seconds(), busy_seconds(args.pinned))
  rc = p.wait()
  watchdog.cancel()
  Path(log_path).write_text(" ".join(cmd) + "\n" + "".join(out))
  res = json.loads(json_path.read_text()) if json_path.exists() else None
  srv = other = None
  if "start" in marks and "end" in marks and None not in (marks["start"][1], marks["end"][1]):
    (t0, s0, b0), (t1, s1, b1) = marks["start"], marks["end"]
    window = max(t1 - t0, 1e-9)
    srv = (s1 - s0) / window
    gen = ((res or {}).get("result", {}).get("generator_cpu_util") or 0) * \
        getattr(args, "loadgen_threads", 1)
    # Busy time of the pinned cpus not spent by the server or the generator: other jobs.
    other = max((b1 - b0) / window - srv - gen, 0.0)
  return rc, res, srv, other, "".join(out)


def med(xs):
  xs = [x for x in xs if x is not None]
  return statistics.median(xs) if xs else None


def fmt_rate(x):
  return "-" if x is None else f"{x:,.0f}"


def fmt_f(x, spec):
  return "-" if x is None else format(x, spec)


