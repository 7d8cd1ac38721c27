"""Bounded memcslap (libmemcached-tools 1.1.4) runs against the server: set, get and mget with 4
threads x 2000 operations, in plain, --non-blocking --tcp-nodelay and --noreply modes.

memcslap exits 0 even when every request fails (it only prints "Fatal error for key ..." or
"Failure" lines), so besides the exit code each run must print no error line, report the
expected key count ("Time to set 8000 keys by 4 threads"), and move the server's counters by
exactly what stock memcached 1.6.18 shows for the same run (recorded):
  set  : cmd_set +8000
  get  : cmd_set +2000 (initial load), cmd_get +8000, get_hits +8000
  mget : cmd_set +2000, cmd_get +8000, get_hits +8000
--binary runs the same with memcslap's binary protocol (registered as a separate meson test).

memcslap's values spread evenly over 0-5 KB; with the default slab geometry (memcached's: 64 B
growing by 1.25) the 18000 items fit the default 64 MB without an eviction, as in memcached.
This test checks the protocol and the counters, not eviction
(tests/integration/test_memory_pressure.py and the store's unit tests cover that).
"""

import re
import shutil

import harness

TOOL_TIMEOUT_S = 15  # a run takes < 1 s; 9 runs must fit the meson timeout
CONCURRENCY = 4
EXECUTE = 2000
EXPECTED = {
    "set": {"cmd_set": CONCURRENCY * EXECUTE, "cmd_get": 0, "get_hits": 0, "get_misses": 0},
    "get": {"cmd_set": EXECUTE, "cmd_get": CONCURRENCY * EXECUTE,
            "get_hits": CONCURRENCY * EXECUTE, "get_misses": 0},
    "mget": {"cmd_set": EXECUTE, "cmd_get": CONCURRENCY * EXECUTE,
             "get_hits": CONCURRENCY * EXECUTE, "get_misses": 0},
}
ERROR_RE = re.compile(r"fatal|fail|error|timeout|refused", re.IGNORECASE)


def counters(srv):
    with srv.connect() as c:
        s = harness.stats(c)
    return {k: int(s.get(k, b"0")) for k in ("cmd_set", "cmd_get", "get_hits", "get_misses")}


def main():
    args = harness.parse_args(__doc__, lambda p: p.add_argument(
        "--binary", action="store_true", help="use memcslap's binary protocol"))
    t = harness.Checker("memcslap_%s" % ("binary" if args.binary else "smoke"), args.verbose)
    tool = shutil.which("memcslap") or "/usr/bin/memcslap"
    modes = [[]] if args.binary else [[], ["--non-blocking", "--tcp-nodelay"], ["--noreply"]]
    with harness.Server(args.server) as srv:
        for mode in modes:
            for test in ("set", "get", "mget"):
                flags = mode + (["--binary"] if args.binary else [])
                label = "memcslap --test=%s %s" % (test, " ".join(flags))
                t.begin(label)
                before = counters(srv)
                rc, out, err = harness.run_tool(
                    [tool, "--servers=%s:%d" % (harness.LOOPBACK, srv.port),
                     "--concurrency=%d" % CONCURRENCY, "--execute-number=%d" % EXECUTE,
                     "--test=%s" % test] + flags, timeout_s=TOOL_TIMEOUT_S)
                t.check(rc is not None, "finished within %d s" % TOOL_TIMEOUT_S)
                t.eq(rc, 0, "exit code")
                bad = [ln for ln in (out + "\n" + err).splitlines() if ERROR_RE.search(ln)]
                t.check(not bad, "no error lines", "\n".join(bad[:5]) +
                        ("\n... %d error lines" % len(bad) if len(bad) > 5 else ""))
                want = "Time to %s %d keys by %d threads" % (test, CONCURRENCY * EXECUTE,
                                                               CONCURRENCY)
                t.check(re.search(r"Time to %s\s+%d keys by\s+%d threads"
                                  % (test, CONCURRENCY * EXECUTE, CONCURRENCY), out),
                        "reports '%s'" % want, out[-600:])
                after = counters(srv)
                delta = {k: after[k] - before[k] for k in after}
                t.eq(delta, EXPECTED[test], "server counter deltas")
        srv.check_alive(t)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=160)
