"""./perf/run's subcommands. Each is a module of this package with HELP (one line),
add_arguments(parser) and run(args) -> exit status; adding one is one line in SUBCOMMANDS."""

import argparse
import importlib
import signal
import subprocess
import sys

from perf import bench

# name -> module (perf/<module>.py)
SUBCOMMANDS = {
    "kernel": "perf.kernel",
    "dpdk": "perf.dpdk",
    "upgrade": "perf.upgrade",
    "herd": "perf.herd",
    "invalidate": "perf.invalidate",
    "memory": "perf.memory",
    "soak": "perf.soak",
}


def main(argv=None):
  ap = argparse.ArgumentParser(prog="perf/run", description="Cachet benchmarks (perf/README.md)")
  sub = ap.add_subparsers(dest="cmd", required=True)
  modules = {}
  for name, module in SUBCOMMANDS.items():
    m = modules[name] = importlib.import_module(module)
    m.add_arguments(sub.add_parser(name, help=m.HELP, description=m.__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter))
  s = sub.add_parser("selftest", help="check that cachet-load rejects malformed replies")
  s.add_argument("loadgen", nargs="?", help="cachet-load binary")
  sub.add_parser("list", help="list the scenarios of kernel and dpdk")
  args = ap.parse_args(argv)
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
  signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
  try:
    if args.cmd == "list":
      modules["kernel"].list_scenarios()
      print("\ndpdk:")
      modules["dpdk"].list_scenarios()
      return 0
    if args.cmd == "selftest":
      extra = [args.loadgen] if args.loadgen else []
      return subprocess.run([str(bench.PERF / "selftest")] + extra).returncode
    bench.ensure_packages()
    return modules[args.cmd].run(args)
  except KeyboardInterrupt:
    return 130
  finally:
    bench.stop_all()
