"""Upgrade in place under load, real cachet-control and real cachetd: 200,000 items written,
clients keep reading and writing while `cachetctl upgrade` runs; afterwards every item (the
200,000 and every acknowledged write made during the upgrade) is present and byte-exact, no
request failed and no connection was refused.

Needs cachetd's side of the upgrade (--admin-socket and --takeover in `cachetd -h`); until that
lands the test reports SKIP (exit 77).

    /usr/bin/python3 tests/integration/test_control_upgrade.py build/dataplane/daemon/cachetd \
        --control build/control/cachet-control --ctl build/control/cachetctl
"""

import socket
import sys
import threading
import time

import harness
import test_control_common as tc

ITEMS = 200_000


def value_for(key):
    """Deterministic value of a key: 20 to 300 bytes, content tied to the key."""
    h = sum(key) * 2654435761 % (1 << 32)
    return (key + b"=") * (1 + h % 12) + b"%d" % h


def preload(port):
    with harness.Conn(port, timeout=30) as conn:
        for start in range(0, ITEMS, 1000):
            keys = [b"pre:%d" % i for i in range(start, min(ITEMS, start + 1000))]
            conn.send(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value_for(k)), value_for(k))
                               for k in keys))
            for k in keys:
                r = conn.line(timeout=30)
                if r != b"STORED\r\n":
                    raise AssertionError("preload %s -> %r" % (k, r))


class Load:
    """Clients reading and writing until stopped. kind 'short': a new connection every few
    requests (refused connections show here); kind 'long': one connection, re-made only when
    the server closes it between requests (counted, not a failure: the old cachetd exits)."""

    def __init__(self, port, kind, tid):
        self.port, self.kind, self.tid = port, kind, tid
        self.failures = []
        self.written = []
        self.requests = 0
        self.reconnects = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def one(self, conn, n):
        key = b"live:%d:%d" % (self.tid, n)
        harness.set_item(conn, key, value_for(key))
        self.written.append(key)
        pre = b"pre:%d" % ((n * 7919 + self.tid) % ITEMS)
        got = harness.get_item(conn, pre)
        if got != (0, value_for(pre)):
            self.failures.append("get %s -> %s" % (pre, harness.show(got, 80)))
        self.requests += 2

    def run(self):
        n = 0
        conn = None
        while not self.stop.is_set() and n < 10_000_000:
            try:
                if conn is None:
                    conn = harness.Conn(self.port, timeout=10)
                self.one(conn, n)
                n += 1
                if self.kind == "short" and n % 3 == 0:
                    conn.close()
                    conn = None
            except harness.Closed as e:
                conn.close()
                conn = None
                if self.kind == "long" and not e.got:
                    self.reconnects += 1  # closed between requests: resend on a new one
                    continue
                self.failures.append("request %d: connection closed mid-reply %r" % (n, e.got))
            except (OSError, AssertionError) as e:
                if conn:
                    conn.close()
                conn = None
                self.failures.append("request %d: %r" % (n, e))
                time.sleep(0.01)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=20)


def wait_requests(loads, base, more=100, timeout=60.0):
    """True once every client made `more` requests beyond `base` (one count per client)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(ld.requests >= b + more for ld, b in zip(loads, base)):
            return True
        if any(ld.failures for ld in loads):
            return False
        time.sleep(0.01)
    return False


def main():
    a = tc.parse_args(__doc__)
    if not (tc.cachetd_supports(a.server, "--takeover") and
            tc.cachetd_supports(a.server, "--admin-socket")):
        print("SKIP: %s -h lists no --takeover/--admin-socket yet: the dataplane side of the "
              "upgrade has not landed" % a.server, flush=True)
        return 77
    t = harness.Checker("control_upgrade", a.verbose)
    with tc.Control(a, config="[dataplane]\nmemory_mb = 512\nthreads = 2\n") as c:
        t.begin("preload")
        t0 = time.monotonic()
        preload(c.port)
        print("preloaded %d items in %.1f s" % (ITEMS, time.monotonic() - t0), flush=True)
        loads = [Load(c.port, "short", 0), Load(c.port, "short", 1), Load(c.port, "long", 2)]
        # Counts, not times: every client is running before the upgrade starts, and each one
        # makes 100 more requests after it (served by the new cachetd) before the load stops.
        t.check(wait_requests(loads, [0] * len(loads)), "every client ran before the upgrade",
                str([ld.requests for ld in loads]))
        t.begin("upgrade under load")
        old = c.dataplane_pid()
        rc, out, err = c.ctl("upgrade", timeout=120)
        print(out, err, flush=True)
        t.eq(rc, 0, "cachetctl upgrade exit status")
        after = [ld.requests for ld in loads]
        ran_after = wait_requests(loads, after)
        for ld in loads:
            ld.finish()
        t.check(c.dataplane_pid() != old, "a new cachetd serves")
        up = c.status().get("last_upgrade", {})
        print("upgrade: serving after %s ms, old gone after %s ms"
              % (up.get("serve_ms"), up.get("total_ms")), flush=True)
        failures = [f for ld in loads for f in ld.failures]
        t.eq(failures[:10], [], "no request failed and no connection was refused")
        t.check(ran_after, "every client went on after the upgrade",
                "at the upgrade's end %s, at the end %s" % (after, [ld.requests for ld in loads]))
        print("requests: %s; long-connection reconnects: %d"
              % ([ld.requests for ld in loads], loads[2].reconnects), flush=True)
        t.begin("every item after the upgrade")
        with harness.Conn(c.port, timeout=30) as conn:
            bad = 0
            keys = [b"pre:%d" % i for i in range(ITEMS)] + [k for ld in loads for k in ld.written]
            for start in range(0, len(keys), 100):
                chunk = keys[start:start + 100]
                conn.send(b"get " + b" ".join(chunk) + b"\r\n")
                got = {}
                while True:
                    ln = conn.line(timeout=30)
                    if ln == b"END\r\n":
                        break
                    parts = ln.split()
                    data = conn.read_exact(int(parts[3]) + 2, timeout=30)[:-2]
                    got[parts[1]] = data
                bad += sum(1 for k in chunk if got.get(k) != value_for(k))
            t.eq(bad, 0, "all %d items present and byte-exact" % len(keys))
        if t.failures:
            print("control log:\n" + c.log())
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 300)
