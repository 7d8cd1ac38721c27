"""./perf/run memory: memory that follows the workload (issue 9), cachetd against stock memcached
(its default automove) with the same -m, one after the other in the same run.

  shift      fill with ~200 B values, then ~600 B, then a wide mix (the peaks of "Scaling
             Memcache at Facebook" figure 10); Zipf-skewed gets with set-on-miss; the hit ratio
             every second. RESULT shift = hit ratio over the last half of each phase after the
             first shift.
  capacity   sets of the paper's value sizes (lognormal, median ~135 B, mean ~950 B) until the
             first eviction, and separately of 32-byte values: RESULT capacity = items held
             (curr_items) when eviction starts.
  transient  a stream of 2-second-TTL sets beside a long-TTL working set read with Zipf skew and
             set-on-miss: RESULT transient = the long-TTL hit ratio; curr_items and bytes held
             every second go to the CSV (memcached keeps expired items until a request or its
             crawler finds them; cachetd's transient cache frees them a second after expiry).
  growth     get latency (one request at a time, a client of its own) while another process
             grows the item count from --growth-start to --growth-end, then at steady state:
             RESULT growth cachet=<p99.9 growing / p99.9 steady> (memcached's figure beside it).

Clients are Python over loopback TCP (pipelined), the same for both servers; medians of
--repeat runs. Each scenario writes perf/results/memory-<scenario>-<time>.csv and a PNG.
"""

import csv
import datetime
import math
import multiprocessing as mp
import os
import random
import socket
import statistics
import sys
import time
from pathlib import Path

import harness
from perf.bench import PERF, add_binary_arguments

HELP = "memory: slab rebalancing after a size shift, capacity, transient items, index growth"
SCENARIOS = ("shift", "capacity", "transient", "growth")
# The CSV columns after server, run, step (a second, a batch of 2000 sets, or the one summary).
COLUMNS = {
    "shift": ["phase", "hit_ratio"],
    "capacity": ["items_sent", "curr_items"],
    "transient": ["long_ttl_hit_ratio", "curr_items", "bytes"],
    "growth": ["p99_growing_us", "p999_growing_us", "p99_steady_us", "p999_steady_us",
               "gets_while_growing"],
}


class Client:
    """A pipelined text-protocol client (gets answered in order, sets with noreply)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def _skip(self, n):
        while len(self.buf) < n:
            self.buf += self.s.recv(1 << 20)
        self.buf = self.buf[n:]

    def hits(self, keys):
        """Sends one get per key; returns the list of hit flags."""
        self.s.sendall(b"".join(b"get %s\r\n" % k for k in keys))
        out = []
        for _ in keys:
            ln = self._line()
            if ln.startswith(b"VALUE"):
                self._skip(int(ln.split()[3]) + 2)
                self._line()  # END
                out.append(True)
            else:
                out.append(False)
        return out

    def sets(self, items, exptime=0):
        self.s.sendall(b"".join(b"set %s 0 %d %d noreply\r\n%s\r\n" % (k, exptime, len(v), v)
                                for k, v in items))

    def sync(self):
        self.s.sendall(b"version\r\n")
        self._line()

    def stats(self, arg=b""):
        self.s.sendall(b"stats" + (b" " + arg if arg else b"") + b"\r\n")
        out = {}
        while True:
            ln = self._line()
            if ln == b"END":
                return out
            p = ln.split(b" ", 2)
            out[p[1].decode()] = p[2].decode() if len(p) > 2 else ""

    def get_one(self, key):
        self.s.sendall(b"get %s\r\n" % key)
        ln = self._line()
        if ln.startswith(b"VALUE"):
            self._skip(int(ln.split()[3]) + 2)
            self._line()


def zipf_sampler(n, s, rnd):
    weights = [1.0 / (i + 1) ** s for i in range(n)]
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    return lambda k: rnd.choices(range(n), cum_weights=cum, k=k)


def start(which, args, memory_mb):
    binary = args.cachetd if which == "cachet" else args.memcached
    return harness.Server(binary, memory_mb=memory_mb, threads=2, item_max=1024 * 1024,
                          name=which)


def mix_size(phase, rnd):
    if phase == 0:
        return rnd.randint(150, 250)
    if phase == 1:
        return rnd.randint(500, 700)
    return int(min(4000, rnd.lognormvariate(math.log(400), 0.9)))


def run_shift(which, args, rnd):
    """Hit ratio per second over three phases of value sizes."""
    per_sec = []
    with start(which, args, args.memory_mb) as srv:
        c = Client(srv.port)
        sample = zipf_sampler(args.keys, args.zipf, rnd)
        for phase in range(3):
            end = time.monotonic() + args.phase_seconds
            sec_end, gets, hits = time.monotonic() + 1, 0, 0
            while time.monotonic() < end:
                keys = [b"p%d:%d" % (phase, i) for i in sample(100)]
                got = c.hits(keys)
                miss = [k for k, h in zip(keys, got) if not h]
                c.sets([(k, b"v" * mix_size(phase, rnd)) for k in miss])
                gets += len(keys)
                hits += sum(got)
                if time.monotonic() >= sec_end:
                    per_sec.append((phase, hits / max(gets, 1)))
                    sec_end, gets, hits = time.monotonic() + 1, 0, 0
        st = c.stats()
    tail = []
    for phase in (1, 2):
        ratios = [h for p, h in per_sec if p == phase]
        tail += ratios[len(ratios) // 2:]
    return {"value": statistics.mean(tail) if tail else 0.0, "series": per_sec,
            "moved": int(st.get("slabs_moved", "0"))}


def run_capacity(which, args, rnd, sizes):
    """Items held when the first eviction comes."""
    with start(which, args, args.memory_mb) as srv:
        c = Client(srv.port)
        i = 0
        series = []
        while True:
            batch = []
            for _ in range(2000):
                n = 32 if sizes == "32" else int(min(500_000, max(1, rnd.lognormvariate(
                    math.log(135), 1.975))))
                batch.append((b"c:%d" % i, b"x" * n))
                i += 1
            c.sets(batch)
            c.sync()
            st = c.stats()
            held = int(st["curr_items"])
            series.append((i, held))
            if int(st["evictions"]) > 0:
                return {"value": held, "series": series}


def run_transient(which, args, rnd):
    """Long-TTL hit ratio under a stream of short-TTL sets; memory held each second."""
    series = []
    with start(which, args, args.memory_mb) as srv:
        c = Client(srv.port)
        sample = zipf_sampler(args.keys, args.zipf, rnd)
        end = time.monotonic() + args.seconds
        sec_end, gets, hits, n = time.monotonic() + 1, 0, 0, 0
        warm = time.monotonic() + args.seconds / 3
        tot_gets = tot_hits = 0
        while time.monotonic() < end:
            keys = [b"long:%d" % i for i in sample(50)]
            got = c.hits(keys)
            c.sets([(k, b"L" * 300) for k, h in zip(keys, got) if not h])
            c.sets([(b"short:%d" % (n + j), b"S" * 300) for j in range(150)], exptime=2)
            n += 150
            gets += len(keys)
            hits += sum(got)
            if time.monotonic() >= warm:
                tot_gets += len(keys)
                tot_hits += sum(got)
            if time.monotonic() >= sec_end:
                st = c.stats()
                series.append((hits / max(gets, 1), int(st["curr_items"]), int(st["bytes"])))
                sec_end, gets, hits = time.monotonic() + 1, 0, 0
    return {"value": tot_hits / max(tot_gets, 1), "series": series}


def _grow(port, first, last, done):
    c = Client(port)
    for i in range(first, last, 5000):
        c.sets([(b"g:%d" % j, b"v" * 32) for j in range(i, min(last, i + 5000))])
        if (i // 5000) % 20 == 0:
            c.sync()
    c.sync()
    done.set()


def p999(lat):
    lat = sorted(lat)
    return lat[min(len(lat) - 1, int(len(lat) * 0.999))], lat[min(len(lat) - 1,
                                                                 int(len(lat) * 0.99))]


def run_growth(which, args, rnd):
    mem = max(args.memory_mb, args.growth_end * 110 // (1 << 20) + 64)
    with start(which, args, mem) as srv:
        c = Client(srv.port)
        _grow(srv.port, 0, args.growth_start, mp.Event())
        done = mp.Event()
        p = mp.Process(target=_grow, args=(srv.port, args.growth_start, args.growth_end, done))
        p.start()
        growing = []
        while not done.is_set():
            k = b"g:%d" % rnd.randrange(args.growth_start)
            t0 = time.perf_counter_ns()
            c.get_one(k)
            growing.append((time.perf_counter_ns() - t0) / 1000)
        p.join()
        steady = []
        for _ in range(max(len(growing), 20000)):
            k = b"g:%d" % rnd.randrange(args.growth_end)
            t0 = time.perf_counter_ns()
            c.get_one(k)
            steady.append((time.perf_counter_ns() - t0) / 1000)
    g999, g99 = p999(growing)
    s999, s99 = p999(steady)
    return {"value": g999 / max(s999, 1e-9), "series": [(g99, g999, s99, s999, len(growing))]}


def add_arguments(ap):
    env = os.environ.get
    add_binary_arguments(ap, loadgen=False)
    ap.add_argument("scenarios", nargs="*", default=list(SCENARIOS), help=" ".join(SCENARIOS))
    ap.add_argument("--repeat", type=int, default=int(env("PERF_REPEAT", 3)))
    ap.add_argument("--memory-mb", type=int, default=64, help="-m of both servers")
    ap.add_argument("--keys", type=int, default=400_000, help="key space of shift, transient")
    ap.add_argument("--zipf", type=float, default=0.9)
    ap.add_argument("--phase-seconds", type=float, default=30.0, help="shift: per phase")
    ap.add_argument("--seconds", type=float, default=30.0, help="transient: run length")
    ap.add_argument("--growth-start", type=int, default=1_000_000)
    ap.add_argument("--growth-end", type=int, default=10_000_000)
    ap.add_argument("--out", default=str(PERF / "results"))


def plot(path, title, ylabel, lines):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (no PNG: python3-matplotlib not importable by %s)" % sys.executable)
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, xs, ys in lines:
        ax.plot(xs, ys, label=label)
    ax.set_title(title)
    ax.set_xlabel("second")
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run(args):
    mp.set_start_method("fork", force=True)
    args.cachetd = str(args.cachetd or Path(args.build) / "dataplane" / "daemon" / "cachetd")
    for what, p in (("cachetd", args.cachetd), ("memcached", args.memcached)):
        if not os.access(p, os.X_OK):
            sys.exit(f"perf/run memory: {what} not found at {p} (build it, or pass its path)")
    bad = [s for s in args.scenarios if s not in SCENARIOS]
    if bad:
        sys.exit("perf/run memory: unknown scenario %s (known: %s)" % (bad, " ".join(SCENARIOS)))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runners = {"shift": run_shift, "transient": run_transient, "growth": run_growth}
    jobs = []
    for s in args.scenarios:
        if s == "capacity":
            jobs += [("capacity", v, lambda w, r, v=v: run_capacity(w, args, r, v))
                     for v in ("paper", "32")]
        else:
            jobs.append((s, "", lambda w, r, f=runners[s]: f(w, args, r)))
    for scenario, variant, fn in jobs:
        name = scenario + ("-" + variant if variant else "")
        res = {"cachet": [], "memcached": []}
        for i in range(args.repeat):
            for which in ("memcached", "cachet"):
                r = fn(which, random.Random(1000 + i))
                res[which].append(r)
                print("  %-14s %-9s run %d: %.4g" % (name, which, i, r["value"]), flush=True)
        med = {w: statistics.median(r["value"] for r in res[w]) for w in res}
        csv_path = out / ("memory-%s-%s.csv" % (name, stamp))
        with open(csv_path, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["server", "run", "step"] + COLUMNS[scenario])
            for w in res:
                for i, r in enumerate(res[w]):
                    for step, v in enumerate(r["series"]):
                        wr.writerow([w, i, step] + list(v if isinstance(v, tuple) else (v,)))
        lines = []
        for w in res:
            mid = sorted(res[w], key=lambda r: r["value"])[len(res[w]) // 2]
            ys = [v[-1] if scenario == "shift" else v[1] if scenario == "capacity" else v[0]
                  for v in mid["series"]]
            if scenario != "growth":
                lines.append((w, list(range(len(ys))), ys))
        png = None
        if lines:
            ylabel = {"shift": "hit ratio", "capacity": "items held",
                      "transient": "long-TTL hit ratio"}[scenario]
            png = plot(out / ("memory-%s-%s.png" % (name, stamp)), name, ylabel, lines)
        print("  wrote %s%s" % (csv_path, (" and %s" % png) if png else ""))
        c, m = med["cachet"], med["memcached"]
        if scenario == "growth":
            print("RESULT growth cachet=%.2f memcached=%.2f" % (c, m), flush=True)
        else:
            print("RESULT %s cachet=%.4g memcached=%.4g ratio=%.2f"
                  % (name, c, m, c / max(m, 1e-9)), flush=True)
    return 0
