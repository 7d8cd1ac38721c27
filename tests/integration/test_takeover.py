"""Upgrade in place, cachetd to cachetd (no control process): 200,000 items written into a
named arena; while clients keep reading and writing over their open connections (and new ones
connect), a second cachetd started with --takeover takes the sockets, the connections and the
arena. Afterwards every item is present and byte-exact, no request failed, no connection was
refused, and the old process has exited. Also: a successor whose -m differs is refused with
exit status 3 and the running one keeps serving, untouched.
"""

import os
import socket
import subprocess
import tempfile
import threading
import time

import harness

ITEMS = 200_000


def value_of(i):
    return b"v%07d-" % i + bytes([97 + i % 26]) * (i % 50)


def preload(port):
    s = socket.create_connection((harness.LOOPBACK, port), timeout=10)
    batch = []
    for i in range(ITEMS):
        v = value_of(i)
        batch.append(b"set k%d %d 0 %d noreply\r\n%s\r\n" % (i, i % 1000, len(v), v))
        if len(batch) == 2000 or i == ITEMS - 1:
            s.sendall(b"".join(batch))
            batch = []
    s.sendall(b"version\r\n")
    buf = b""
    while not buf.endswith(b"\r\n"):
        buf += s.recv(4096)
    s.close()
    return buf.startswith(b"VERSION")


class Load(threading.Thread):
    """One persistent connection doing set/get pairs until told to stop; counts failures."""

    def __init__(self, port, ident):
        super().__init__(daemon=True)
        self.port, self.who = port, ident
        self.ok = self.failed = 0
        self.errors = []
        self.stop = threading.Event()
        self.written = {}

    def run(self):
        try:
            c = harness.Conn(self.port, timeout=10)
        except OSError as e:
            self.failed += 1
            self.errors.append("connect: %s" % e)
            return
        n = 0
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            key = b"live%d_%d" % (self.who, n % 500)
            val = b"%d-%d" % (self.who, n)
            try:
                r = c.request(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(val), val))
                g = harness.get_item(c, key)
                if r != b"STORED\r\n" or g != (0, val):
                    self.failed += 1
                    self.errors.append("%r -> %r / %r" % (key, r, g))
                else:
                    self.ok += 1
                    self.written[key] = val
            except Exception as e:  # noqa: BLE001 - a failed request is what we count
                self.failed += 1
                self.errors.append("%r: %s" % (key, e))
                break
            n += 1
        c.close()


def start(server, port, shm, admin, log, extra=()):
    cmd = [server, "-p", str(port), "-U", "0", "-l", harness.LOOPBACK, "-m", "256", "-t", "2",
           "--shm", shm, "--admin-socket", admin] + list(extra)
    return harness.spawn(cmd, log)


def wait_serving(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with harness.Conn(port, timeout=1) as c:
                if c.request(b"version\r\n").startswith(b"VERSION"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def main():
    args = harness.parse_args(__doc__)
    t = harness.Checker("takeover", args.verbose)
    if harness.is_memcached(args.server):
        print("SKIP: cachetd only")
        return 77
    tmp = tempfile.mkdtemp(prefix="cachet-takeover-")
    shm = "/dev/shm/cachet-takeover-%d" % os.getpid()
    port = harness.free_port()
    admin1, admin2 = os.path.join(tmp, "a1.sock"), os.path.join(tmp, "a2.sock")
    log = os.path.join(tmp, "cachetd.log")
    tail = lambda: open(log, errors="replace").read()[-3000:]
    old = start(args.server, port, shm, admin1, log, ["-v"])
    try:
        t.begin("start and preload")
        t.check(wait_serving(port), "first cachetd serves", tail())
        t.check(preload(port), "%d items written" % ITEMS)

        t.begin("incompatible successor is refused before anything moves")
        bad = subprocess.run([args.server, "-p", str(port), "-l", harness.LOOPBACK, "-m", "512",
                              "-t", "2", "--shm", shm, "--admin-socket", admin2,
                              "--takeover", admin1], capture_output=True, text=True, timeout=20)
        t.eq(bad.returncode, 3, "exit status 3")
        t.check("256 MB" in bad.stderr and "512 MB" in bad.stderr, "message names both sizes",
                bad.stderr)
        with harness.Conn(port) as c:
            t.eq(harness.get_item(c, b"k12345"), (345, value_of(12345)), "old one still serves")

        t.begin("takeover under load")
        loads = [Load(port, i) for i in range(4)]
        for ld in loads:
            ld.start()
        time.sleep(0.5)
        began = time.monotonic()
        new = start(args.server, port, shm, admin2, log, ["-v", "--takeover", admin1])
        # New connections keep coming while the sockets change hands.
        refused = 0
        for _ in range(40):
            try:
                with harness.Conn(port, timeout=5) as c:
                    if not c.request(b"version\r\n").startswith(b"VERSION"):
                        refused += 1
            except OSError:
                refused += 1
            time.sleep(0.02)
        try:
            old.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        t.check(old.poll() is not None, "old cachetd exited", tail())
        t.check(old.returncode == 0, "old cachetd exit status 0",
                "exit status %s\n%s" % (old.returncode, tail()))
        t.check(new.poll() is None, "new cachetd running", tail())
        elapsed = time.monotonic() - began
        time.sleep(0.5)
        for ld in loads:
            ld.stop.set()
        for ld in loads:
            ld.join(timeout=20)
        t.eq(refused, 0, "no new connection refused during the upgrade")
        failed = sum(ld.failed for ld in loads)
        t.eq(failed, 0, "no request failed on open connections",)
        if failed:
            print("\n".join(e for ld in loads for e in ld.errors[:3]))
        t.check(sum(ld.ok for ld in loads) > 100, "clients made progress (%d requests)"
                % sum(ld.ok for ld in loads))
        print("takeover: old exited %.0f ms after the successor started" % (elapsed * 1000))

        t.begin("every item kept")
        with harness.Conn(port, timeout=10) as c:
            missing = 0
            for i in range(0, ITEMS, 100):
                keys = [b"k%d" % j for j in range(i, i + 100)]
                c.send(b"get " + b" ".join(keys) + b"\r\n")
                got = harness.parse_values(c.read_retrieval())
                for j, k in enumerate(keys):
                    if got.get(k) != (((i + j) % 1000), value_of(i + j)):
                        missing += 1
            t.eq(missing, 0, "all %d preloaded items byte-exact" % ITEMS)
            bad_live = 0
            for ld in loads:
                for k, v in ld.written.items():
                    if harness.get_item(c, k) is None:
                        bad_live += 1
            t.eq(bad_live, 0, "items written during the upgrade kept")
    finally:
        harness.stop_all()
        for p in (shm,):
            if os.path.exists(p):
                os.unlink(p)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=150)
