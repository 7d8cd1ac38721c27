"""./perf/run upgrade: Cachet's upgrade in place against stock memcached's restartable cache,
at the same item count, in one run.

  cachet:    cachetd --shm A --admin-socket S, then a second cachetd --takeover S (the new
             binary takes the sockets, the open connections and the arena).
  memcached: memcached -e /dev/shm/FILE, SIGUSR1 (graceful stop, memory file kept), then the
             same command again (it restores the cache from the file when it can).

A client keeps sending gets on a persistent connection (reconnecting when it must) through the
switch. Measured per target: the longest gap between two answered requests (the time until
serving again, as a client sees it), failed requests (refused, reset, or answered with an
error), and the share of preloaded items still there afterwards (every 100th key checked).
Prints `RESULT upgrade-<N> cachet=<ms> memcached=<ms> ratio=<memcached/cachet>` (above 1:
Cachet serves again sooner). A timing never fails the run; a server that does not start does.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

from harness import free_port
from perf.bench import PERF, add_binary_arguments

HOST = "127.0.0.1"
HELP = ("cachetd --takeover vs memcached's restartable cache (-e), at the same item counts")


def add_arguments(p):
    add_binary_arguments(p, loadgen=False)
    p.add_argument("--items", default="1000000,10000000", help="comma separated item counts")
    p.add_argument("--out", default=str(PERF / "results"))


def wait_serving(port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                s.sendall(b"version\r\n")
                if s.recv(100).startswith(b"VERSION"):
                    return True
        except OSError:
            time.sleep(0.01)
    return False


def value_of(i):
    return b"%031d" % i  # 31 bytes: a fixed size, like the paper's small values


def preload(port, n):
    s = socket.create_connection((HOST, port), timeout=30)
    for start in range(0, n, 20000):
        s.sendall(b"".join(b"set k%d 0 0 31 noreply\r\n%s\r\n" % (i, value_of(i))
                           for i in range(start, min(n, start + 20000))))
    s.sendall(b"version\r\n")
    buf = b""
    while b"\r\n" not in buf:
        buf += s.recv(4096)
    s.close()


def kept(port, n):
    """Share of every 100th key that is present with the right value."""
    s = socket.create_connection((HOST, port), timeout=30)
    f = s.makefile("rb")
    checked = present = 0
    keys = list(range(0, n, 100))
    for b in range(0, len(keys), 100):
        batch = keys[b:b + 100]
        s.sendall(b"get " + b" ".join(b"k%d" % i for i in batch) + b"\r\n")
        got = {}
        while True:
            line = f.readline()
            if line.startswith(b"END"):
                break
            _, key, _, size = line.split()
            got[key] = f.read(int(size) + 2)[:-2]
        for i in batch:
            checked += 1
            present += got.get(b"k%d" % i) == value_of(i)
    s.close()
    return present / max(1, checked)


class Prober(threading.Thread):
    """Gets on a persistent connection; records answer times and failures until stopped."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.ok_times = []
        self.failed = 0

    def run(self):
        s = None
        while not self.stop.is_set():
            try:
                if s is None:
                    s = socket.create_connection((HOST, self.port), timeout=2)
                s.sendall(b"get k1\r\n")
                buf = b""
                while not buf.endswith(b"END\r\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        raise ConnectionError("closed")
                    buf += chunk
                self.ok_times.append(time.monotonic())
            except OSError:
                self.failed += 1
                if s is not None:
                    s.close()
                s = None
                time.sleep(0.001)
        if s is not None:
            s.close()

    def longest_gap_ms(self, since):
        ts = [t for t in self.ok_times if t >= since - 0.5]
        return max((b - a for a, b in zip(ts, ts[1:])), default=float("nan")) * 1000


def run_target(name, start_cmd, switch, port, n, log):
    """Starts, preloads n items, probes through switch(), returns the figures."""
    first = subprocess.Popen(start_cmd(), stdout=log, stderr=subprocess.STDOUT)
    procs = [first]
    try:
        if not wait_serving(port, 30):
            raise RuntimeError("%s did not start" % name)
        t0 = time.monotonic()
        preload(port, n)
        load_s = time.monotonic() - t0
        probe = Prober(port)
        probe.start()
        time.sleep(0.5)
        began = time.monotonic()
        procs.append(switch(first))
        if not wait_serving(port, 120):
            raise RuntimeError("%s did not serve after the switch" % name)
        time.sleep(0.5)
        probe.stop.set()
        probe.join()
        return {"target": name, "items": n, "preload_s": round(load_s, 2),
                "serve_gap_ms": round(probe.longest_gap_ms(began), 2),
                "failed_requests": probe.failed, "items_kept": round(kept(port, n), 5)}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def cachet(binary, n, memory_mb, tmp, log):
    port = free_port()
    shm = "/dev/shm/cachet-upgrade-bench-%d" % os.getpid()
    a1, a2 = os.path.join(tmp, "a1.sock"), os.path.join(tmp, "a2.sock")
    base = [binary, "-p", str(port), "-U", "0", "-l", HOST, "-t", "1", "-m", str(memory_mb),
            "--shm", shm]

    def switch(old):
        new = subprocess.Popen(base + ["--admin-socket", a2, "--takeover", a1], stdout=log,
                               stderr=subprocess.STDOUT)
        old.wait(timeout=60)
        return new

    try:
        return run_target("cachet", lambda: base + ["--admin-socket", a1], switch, port, n, log)
    finally:
        if os.path.exists(shm):
            os.unlink(shm)


def memcached(binary, n, memory_mb, tmp, log):
    port = free_port()
    mem = "/dev/shm/memcached-upgrade-bench-%d" % os.getpid()
    cmd = [binary, "-p", str(port), "-U", "0", "-l", HOST, "-t", "1", "-m", str(memory_mb),
           "-e", mem] + (["-u", "root"] if os.geteuid() == 0 else [])

    def switch(old):
        old.send_signal(signal.SIGUSR1)  # graceful stop, memory file kept
        old.wait(timeout=120)
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    try:
        return run_target("memcached", lambda: cmd, switch, port, n, log)
    finally:
        for p in (mem, mem + ".meta"):
            if os.path.exists(p):
                os.unlink(p)


def run(a):
    a.cachetd = a.cachetd or os.path.join(a.build, "dataplane", "daemon", "cachetd")
    a.results = a.out
    counts = [int(x) for x in a.items.split(",")]
    os.makedirs(a.results, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="cachet-upgrade-bench-")
    log_path = os.path.join(tmp, "servers.log")
    print("upgrade benchmark: items %s, values 31 bytes, -t 1, one probing client; log %s"
          % (counts, log_path), flush=True)
    rows = []
    with open(log_path, "ab") as log:
        for n in counts:
            memory_mb = max(256, n * 160 // (1 << 20) + 128)
            c = cachet(a.cachetd, n, memory_mb, tmp, log)
            m = memcached(a.memcached, n, memory_mb, tmp, log)
            rows += [c, m]
            for r in (c, m):
                print("  %-9s %9d items: serving again after %8.2f ms, %d failed requests, "
                      "%.3f%% of items kept (preload %.1f s)"
                      % (r["target"], n, r["serve_gap_ms"], r["failed_requests"],
                         100 * r["items_kept"], r["preload_s"]), flush=True)
            label = "%dM" % (n // 1_000_000) if n >= 1_000_000 else "%dk" % (n // 1000)
            ratio = m["serve_gap_ms"] / c["serve_gap_ms"] if c["serve_gap_ms"] > 0 else float("inf")
            print("RESULT upgrade-%s cachet=%.2f memcached=%.2f ratio=%.1f"
                  % (label, c["serve_gap_ms"], m["serve_gap_ms"], ratio), flush=True)
    out = os.path.join(a.results, "upgrade-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    with open(out, "w") as f:
        json.dump(rows, f, indent=1)
    print("results: %s" % out)
    return 0

