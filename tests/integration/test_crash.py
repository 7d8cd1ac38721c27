"""Crash survival: cachetd with a named arena is killed with SIGKILL while clients write; a new
cachetd on the same arena must never serve a torn or wrong value, and must keep at least 99% of
the items whose STORED it had sent before dying. Prints the survival rate.
"""

import os
import signal
import socket
import tempfile
import threading
import time

import harness

WRITERS = 3
KILL_AFTER = 60_000  # acknowledged writes before the SIGKILL (writes are still in flight then)


def value_of(key):
    # Self-describing and long enough that a torn copy shows: key, length, filler, key again.
    body = key * (1 + len(key) % 7)
    return b"<" + key + b"|" + body + b"|" + key + b">"


class Writer(threading.Thread):
    """Pipelined unique-key sets; remembers which keys were acknowledged."""

    def __init__(self, port, who):
        super().__init__(daemon=True)
        self.port, self.who = port, who
        self.acked = []

    def run(self):
        try:
            s = socket.create_connection((harness.LOOPBACK, self.port), timeout=5)
        except OSError:
            return
        n, buf, pending = 0, b"", []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            batch = []
            for _ in range(50):
                key = b"w%d_%d" % (self.who, n)
                v = value_of(key)
                batch.append(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(v), v))
                pending.append(key)
                n += 1
            try:
                s.sendall(b"".join(batch))
                while pending:
                    while b"\r\n" not in buf:
                        chunk = s.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    line, buf = buf.split(b"\r\n", 1)
                    key = pending.pop(0)
                    if line == b"STORED":
                        self.acked.append(key)
            except OSError:
                return  # the server died: what was acknowledged so far is what counts


def main():
    args = harness.parse_args(__doc__)
    t = harness.Checker("crash_survival", args.verbose)
    if harness.is_memcached(args.server):
        print("SKIP: cachetd only")
        return 77
    tmp = tempfile.mkdtemp(prefix="cachet-crash-")
    shm = "/dev/shm/cachet-crash-%d" % os.getpid()
    log = os.path.join(tmp, "cachetd.log")
    tail = lambda: open(log, errors="replace").read()[-3000:]
    port = harness.free_port()
    cmd = [args.server, "-p", str(port), "-U", "0", "-l", harness.LOOPBACK, "-m", "256", "-t", "2",
           "--shm", shm]
    try:
        first = harness.spawn(cmd, log)
        t.begin("write, then SIGKILL mid-stream")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((harness.LOOPBACK, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        writers = [Writer(port, i) for i in range(WRITERS)]
        for w in writers:
            w.start()
        deadline = time.monotonic() + 30
        while sum(len(w.acked) for w in writers) < KILL_AFTER and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        for w in writers:
            w.join(timeout=10)
        acked = [k for w in writers for k in w.acked]
        t.check(len(acked) >= KILL_AFTER, "clients wrote before the crash (%d acknowledged)"
                % len(acked))

        t.begin("restart on the same arena")
        second = harness.spawn(cmd + ["-v"], log)
        ok = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not ok:
            try:
                with harness.Conn(port, timeout=1) as c:
                    ok = c.request(b"version\r\n").startswith(b"VERSION")
            except OSError:
                time.sleep(0.05)
        t.check(ok, "restarted cachetd serves", tail())
        present = wrong = 0
        with harness.Conn(port, timeout=10) as c:
            for i in range(0, len(acked), 100):
                keys = acked[i:i + 100]
                c.send(b"get " + b" ".join(keys) + b"\r\n")
                got = harness.parse_values(c.read_retrieval())
                for key in keys:
                    if key not in got:
                        continue
                    if got[key] == (0, value_of(key)):
                        present += 1
                    else:
                        wrong += 1
            st = harness.stats(c)
        rate = 100.0 * present / max(1, len(acked))
        print("crash survival: %d of %d acknowledged items kept (%.3f%%), %d wrong, "
              "crash_dropped=%s" % (present, len(acked), rate, wrong,
                                    st.get("crash_dropped", b"?").decode()))
        t.eq(wrong, 0, "no torn or wrong value served")
        t.check(rate >= 99.0, "at least 99%% of acknowledged items kept (%.3f%%)" % rate)
        t.check("not detached cleanly" in tail(), "the restart noticed the crash", tail())
        harness.stop_pid(second)
    finally:
        harness.stop_all()
        if os.path.exists(shm):
            os.unlink(shm)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=120)
