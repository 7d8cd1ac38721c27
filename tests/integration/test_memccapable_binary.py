"""memccapable -b (libmemcached-tools 1.1.4, binary protocol only) against the server.

Passes only if memccapable exits 0, prints "All tests passed", reports every test as [pass]
(no fail, no skip) and runs at least the 27 binary tests that stock memcached 1.6.18 passes:
noop quit quitq set setq flush flushq add addq replace replaceq delete deleteq get getq getk
getkq incr incrq decr decrq version append appendq prepend prependq stat. memcached skips none.
(memccapable without -a or -b runs these after its ASCII tests; test_memccapable.py covers those.)
"""

import re
import shutil

import harness

# The binary tests memcached 1.6.18 passes with memccapable 1.1.4 (recorded, see the docstring).
EXPECTED = ["binary " + n for n in (
    "noop", "quit", "quitq", "set", "setq", "flush", "flushq", "add", "addq", "replace",
    "replaceq", "delete", "deleteq", "get", "getq", "getk", "getkq", "incr", "incrq", "decr",
    "decrq", "version", "append", "appendq", "prepend", "prependq", "stat")]

RESULT_RE = re.compile(r"^(?P<name>\S.*?)\s+\[(?P<status>[a-zA-Z]+)\]\s*$")


def main():
    args = harness.parse_args(__doc__)
    t = harness.Checker("memccapable_binary", args.verbose)
    tool = shutil.which("memccapable") or "/usr/bin/memccapable"
    with harness.Server(args.server) as srv:
        t.begin("memccapable -b")
        rc, out, err = harness.run_tool(
            [tool, "-b", "-h", harness.LOOPBACK, "-p", str(srv.port), "-t", "5"], timeout_s=60)
        print(out, end="")
        if err.strip():
            print("stderr:\n" + err, end="")
        t.check(rc is not None, "memccapable finished within 60 s")
        t.eq(rc, 0, "memccapable exit code")
        results = {}
        for line in out.splitlines():
            m = RESULT_RE.match(line)
            if m:
                results[m.group("name")] = m.group("status").lower()
        for name in EXPECTED:
            t.eq(results.get(name), "pass", "memccapable test %r" % name)
        for name, status in results.items():
            if name not in EXPECTED:
                t.eq(status, "pass", "memccapable extra test %r" % name)
        t.check("FAIL" not in out.upper(), "no FAIL in memccapable output")
        t.check("All tests passed" in out, "memccapable reports 'All tests passed'")
        srv.check_alive(t)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=90)
