"""./perf/run herd: the paper's thundering-herd experiment ("Scaling Memcache at Facebook" 3.2.1) on this machine.

A simulated database (its own process: answers a read after --db-latency-ms, counts queries) holds
a version per key. A writer updates a few hot keys at a steady rate, each update followed by a
delete of the key from the cache. Many read-through clients (--clients coroutines in --procs
processes, Zipf-skewed over --keys keys) read the cache and, on a miss, query the database and
fill the cache. Three arms, one after another in the same run:

  memcached   stock memcached, get -> on miss query the database -> set
  cachet      cachetd, the same get/set client
  leases      cachetd, lease-get -> on a token query the database -> lease-set; on a hot miss
              (token 1) use the stale value if one came with it, else back off 2 ms doubling to
              500 ms, at most 10 tries (mcrouter's lookaside route), then query the database

For each arm: database queries/s (mean and peak of 1 s buckets), client-visible read latency p50
and p99, the share of reads answered stale, and stale sets (keys whose cached value is older than
the database's once the writer and readers stopped). Ends with

  RESULT herd cachet=<db queries/s, leases> memcached=<db queries/s, memcached> ratio=<m/c>
  RESULT herd-stale-sets cachet=<n, leases> memcached=<n, memcached>

(medians over --repeat runs) and writes perf/results/herd-<time>.csv (queries per second over
time per arm and run) and a PNG plot of the median run of each arm.
"""

import asyncio
import bisect
import csv
import datetime
import multiprocessing as mp
import os
import random
import signal
import statistics
import sys
import time
from pathlib import Path

import harness  # free ports, server start/stop by pid
from perf.bench import PERF, add_binary_arguments

HELP = ("the paper's thundering herd: database load with leases vs get/set on memcached and "
        "cachetd")

VALUE_PAD = b"x" * 90  # a ~100-byte value: the version, then filler


def value_of(version):
    return b"%d:" % version + VALUE_PAD


def version_of(value):
    return int(value.split(b":", 1)[0])


# ---------------------------------------------------------------------------------------------
# The simulated database: "G <key>\n" -> "<version>\n" after the latency (the version is read
# when the query arrives, as a database reads a row, then the reply travels); "P <key>\n" bumps
# the version at once -> "<version>\n"; "V\n" -> every version; "C\n" -> the per-second read
# counts so far. Reads are what the experiment counts.

def db_main(port, latency_s, ready):
    versions = {}
    buckets = {}
    t0 = [time.monotonic()]  # start of the measurement ("R" moves it)

    async def serve(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                op, _, key = line.rstrip(b"\n").partition(b" ")
                if op == b"G":
                    v = versions.get(key, 0)
                    sec = int(time.monotonic() - t0[0])
                    buckets[sec] = buckets.get(sec, 0) + 1
                    await asyncio.sleep(latency_s)
                    writer.write(b"%d\n" % v)
                elif op == b"P":
                    versions[key] = versions.get(key, 0) + 1
                    writer.write(b"%d\n" % versions[key])
                elif op == b"V":
                    writer.write(b" ".join(b"%s=%d" % kv for kv in versions.items()) + b"\n")
                elif op == b"C":
                    writer.write(b" ".join(b"%d=%d" % kv for kv in sorted(buckets.items()))
                                 + b"\n")
                elif op == b"R":
                    buckets.clear()
                    t0[0] = time.monotonic()
                    writer.write(b"ok\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", port, limit=1 << 20)
        ready.set()
        async with server:
            await server.serve_forever()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(main())


class Db:
    """The test's own connection to the database (writer and bookkeeping)."""

    def __init__(self, port):
        self.port = port

    async def open(self):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 24)
        return self

    async def call(self, line):
        self.w.write(line + b"\n")
        await self.w.drain()
        return (await self.r.readline()).rstrip(b"\n")


# ---------------------------------------------------------------------------------------------
# Readers


class Zipf:
    def __init__(self, n, s, rng):
        w = [1.0 / (i + 1) ** s for i in range(n)]
        total = sum(w)
        acc, self.cdf = 0.0, []
        for x in w:
            acc += x / total
            self.cdf.append(acc)
        self.rng = rng

    def draw(self):
        return min(bisect.bisect_left(self.cdf, self.rng.random()), len(self.cdf) - 1)


async def read_line(r):
    line = await r.readline()
    if not line:
        raise ConnectionError("closed")
    return line


async def read_value_reply(r):
    """(kind, token, value): kind b'VALUE', b'LVALUE' or b'END'."""
    head = await read_line(r)
    if head == b"END\r\n":
        return b"END", 0, None
    parts = head.split()
    if parts[0] == b"VALUE":
        n = int(parts[3])
        data = await r.readexactly(n + 2)
        await read_line(r)  # END
        return b"VALUE", 0, data[:-2]
    if parts[0] == b"LVALUE":
        n = int(parts[4])
        data = await r.readexactly(n + 2)
        await read_line(r)
        return b"LVALUE", int(parts[2]), data[:-2]
    raise ValueError("unexpected reply %r" % head)


async def reader(arm, cache_port, db_port, keys, zipf, until, stats):
    cr, cw = await asyncio.open_connection("127.0.0.1", cache_port)
    dr, dw = await asyncio.open_connection("127.0.0.1", db_port)

    async def db_get(key):
        dw.write(b"G " + key + b"\n")
        await dw.drain()
        return int(await read_line(dr))

    async def cache(line):
        cw.write(line)
        await cw.drain()

    while time.monotonic() < until:
        key = keys[zipf.draw()]
        t0 = time.perf_counter()
        if arm != "leases":
            await cache(b"get " + key + b"\r\n")
            kind, _, _ = await read_value_reply(cr)
            if kind == b"END":
                v = value_of(await db_get(key))
                await cache(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(v), v))
                await read_line(cr)
        else:
            delay = 0.002
            for attempt in range(11):
                if attempt == 10:  # out of tries: the database, no fill
                    await db_get(key)
                    stats["gave_up"] += 1
                    break
                await cache(b"lease-get " + key + b"\r\n")
                kind, token, data = await read_value_reply(cr)
                if kind == b"VALUE":
                    break
                if token > 1:
                    v = value_of(await db_get(key))
                    await cache(b"lease-set %s %d 0 0 %d\r\n%s\r\n" % (key, token, len(v), v))
                    await read_line(cr)
                    break
                if data:  # a hot miss with a stale value: stale reads are allowed here
                    stats["stale"] += 1
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
        stats["lat"].append(time.perf_counter() - t0)
        stats["reads"] += 1
    cw.close()
    dw.close()


def reader_proc(arm, cache_port, db_port, nkeys, zipf_s, clients, seconds, seed, out):
    keys = [b"herd:%d" % i for i in range(nkeys)]
    stats = {"lat": [], "reads": 0, "stale": 0, "gave_up": 0}

    async def main():
        until = time.monotonic() + seconds
        rng = random.Random(seed)
        await asyncio.gather(*(reader(arm, cache_port, db_port, keys,
                                      Zipf(nkeys, zipf_s, random.Random(rng.random())), until,
                                      stats) for _ in range(clients)))
    asyncio.run(main())
    lat = sorted(stats["lat"])
    # A sample of the latencies is enough for percentiles across processes.
    step = max(1, len(lat) // 20000)
    out.put({"lat": lat[::step], "reads": stats["reads"], "stale": stats["stale"],
             "gave_up": stats["gave_up"]})


# ---------------------------------------------------------------------------------------------
# One arm


async def writer_task(db_port, cache_port, hot, rate, until):
    db = await Db(db_port).open()
    cr, cw = await asyncio.open_connection("127.0.0.1", cache_port)
    i, n = 0, 0
    next_at = time.monotonic()
    while time.monotonic() < until:
        key = hot[i % len(hot)]
        i += 1
        await db.call(b"P " + key)
        cw.write(b"delete " + key + b"\r\n")
        await cw.drain()
        await read_line(cr)
        n += 1
        next_at += 1.0 / rate
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    cw.close()
    return n


async def preload(cache_port, keys):
    cr, cw = await asyncio.open_connection("127.0.0.1", cache_port)
    v = value_of(0)
    for k in keys:
        cw.write(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(v), v))
    cw.write(b"version\r\n")
    await cw.drain()
    await read_line(cr)
    cw.close()


async def stale_sets(cache_port, db_port, keys):
    """Keys whose cached value is older than the database's."""
    db = await Db(db_port).open()
    versions = {}
    for kv in (await db.call(b"V")).split():
        k, _, v = kv.partition(b"=")
        versions[k] = int(v)
    cr, cw = await asyncio.open_connection("127.0.0.1", cache_port)
    stale = 0
    for k in keys:
        cw.write(b"get " + k + b"\r\n")
        await cw.drain()
        kind, _, data = await read_value_reply(cr)
        if kind == b"VALUE" and version_of(data) < versions.get(k, 0):
            stale += 1
    cw.close()
    return stale


def run_arm(arm, server_bin, args, run_index):
    db_port = harness.free_port()
    ready = mp.Event()
    db = mp.Process(target=db_main, args=(db_port, args.db_latency_ms / 1000.0, ready),
                    daemon=True)
    db.start()
    ready.wait(10)
    server = harness.Server(server_bin, memory_mb=256, threads=args.threads,
                            name="%s-%d" % (arm, run_index))
    keys = [b"herd:%d" % i for i in range(args.keys)]
    hot = keys[:args.hot_keys]
    try:
        asyncio.run(preload(server.port, keys))
        out = mp.Queue()
        procs = [mp.Process(target=reader_proc,
                            args=(arm, server.port, db_port, args.keys, args.zipf,
                                  args.clients // args.procs, args.seconds, 1000 * run_index + p,
                                  out))
                 for p in range(args.procs)]

        async def drive():
            c = await Db(db_port).open()
            await c.call(b"R")
            until = time.monotonic() + args.seconds
            for p in procs:
                p.start()
            writes = await writer_task(db_port, server.port, hot, args.write_rate, until)
            return writes, c
        writes, _ = asyncio.run(drive())
        results = [out.get(timeout=args.seconds + 60) for _ in procs]
        for p in procs:
            p.join(30)

        async def counts():
            c = await Db(db_port).open()
            line = await c.call(b"C")
            got = dict((int(a), int(b)) for a, b in (kv.split(b"=") for kv in line.split()))
            return [got.get(s, 0) for s in range(int(args.seconds))]
        per_sec = asyncio.run(counts())
        stale = asyncio.run(stale_sets(server.port, db_port, keys))
    finally:
        server.stop()
        db.terminate()
        db.join(5)
    lat = sorted(x for r in results for x in r["lat"])
    reads = sum(r["reads"] for r in results)
    measured = per_sec[:int(args.seconds)] or [0]
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0.0  # noqa: E731
    return {"arm": arm, "run": run_index, "per_sec": measured,
            "db_mean": statistics.mean(measured), "db_peak": max(measured),
            "p50_ms": q(0.50), "p99_ms": q(0.99), "reads": reads,
            "reads_per_s": reads / args.seconds,
            "stale_share": sum(r["stale"] for r in results) / max(1, reads),
            "gave_up": sum(r["gave_up"] for r in results), "writes": writes,
            "stale_sets": stale}


# ---------------------------------------------------------------------------------------------


def plot(path, runs_by_arm):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no matplotlib: PNG skipped; Debian python3-matplotlib)")
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for arm, runs in runs_by_arm.items():
        med = sorted(runs, key=lambda r: r["db_mean"])[len(runs) // 2]
        ax.plot(range(1, len(med["per_sec"]) + 1), med["per_sec"], label=arm, marker=".")
    ax.set_yscale("log")
    ax.set_xlabel("second")
    ax.set_ylabel("database queries per second (log)")
    ax.set_title("Thundering herd: database load under hot-key updates (median run)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def add_arguments(ap):
    env = os.environ.get
    add_binary_arguments(ap, loadgen=False)
    ap.add_argument("--seconds", type=float, default=float(env("PERF_DURATION", 15)))
    ap.add_argument("--repeat", type=int, default=int(env("PERF_REPEAT", 3)))
    ap.add_argument("--clients", type=int, default=128, help="read-through clients in all")
    ap.add_argument("--procs", type=int, default=2, help="processes the clients run in")
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent over the keys")
    ap.add_argument("--hot-keys", type=int, default=3, help="keys the writer updates")
    ap.add_argument("--write-rate", type=float, default=300.0, help="updates per second, in all")
    ap.add_argument("--db-latency-ms", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2, help="server -t")
    ap.add_argument("--arms", default="memcached,cachet,leases")
    ap.add_argument("--out", default=str(PERF / "results"))


def run(args):
    mp.set_start_method("fork", force=True)  # the client processes inherit the loaded modules
    args.cachetd = str(args.cachetd or Path(args.build) / "dataplane" / "daemon" / "cachetd")
    for what, p in (("cachetd", args.cachetd), ("memcached", args.memcached)):
        if not os.access(p, os.X_OK):
            sys.exit(f"perf/run herd: {what} not found at {p} (build it, or pass its path)")
    arms = [a for a in args.arms.split(",") if a]
    print("herd: %d clients in %d procs, %d keys (Zipf %.2f), writer %.0f/s over %d hot keys, "
          "db latency %.1f ms, %.0f s per run, %d runs per arm"
          % (args.clients, args.procs, args.keys, args.zipf, args.write_rate, args.hot_keys,
             args.db_latency_ms, args.seconds, args.repeat), flush=True)
    bins = {"memcached": args.memcached, "cachet": args.cachetd, "leases": args.cachetd}
    runs = {a: [] for a in arms}
    for i in range(args.repeat):
        for arm in arms:
            r = run_arm(arm, bins[arm], args, i)
            runs[arm].append(r)
            print("  %-9s run %d: db %7.0f q/s (peak %6d), reads %7.0f/s, p50 %6.2f ms, "
                  "p99 %7.2f ms, stale answers %5.1f%%, gave up %d, stale sets %d"
                  % (arm, i, r["db_mean"], r["db_peak"], r["reads_per_s"], r["p50_ms"],
                     r["p99_ms"], 100 * r["stale_share"], r["gave_up"], r["stale_sets"]),
                  flush=True)
    med = lambda arm, f: statistics.median(r[f] for r in runs[arm])  # noqa: E731
    print("\n%-10s %10s %10s %10s %10s %9s %10s" % ("arm", "db q/s", "db peak", "p50 ms",
                                                   "p99 ms", "stale %", "stale sets"))
    for arm in arms:
        print("%-10s %10.0f %10.0f %10.2f %10.2f %9.1f %10.0f"
              % (arm, med(arm, "db_mean"), med(arm, "db_peak"), med(arm, "p50_ms"),
                 med(arm, "p99_ms"), 100 * med(arm, "stale_share"), med(arm, "stale_sets")))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / ("herd-%s.csv" % stamp)
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arm", "run", "second", "db_queries", "db_mean", "p50_ms", "p99_ms",
                    "stale_share", "stale_sets"])
        for arm in arms:
            for r in runs[arm]:
                for s, q in enumerate(r["per_sec"], 1):
                    w.writerow([arm, r["run"], s, q, round(r["db_mean"], 1),
                                round(r["p50_ms"], 3), round(r["p99_ms"], 3),
                                round(r["stale_share"], 4), r["stale_sets"]])
    png = plot(out / ("herd-%s.png" % stamp), runs)
    print("\nwrote %s%s" % (csv_path, (" and %s" % png) if png else ""))
    if "leases" in runs and "memcached" in runs:
        c, m = med("leases", "db_mean"), med("memcached", "db_mean")
        print("RESULT herd cachet=%.0f memcached=%.0f ratio=%.2f" % (c, m, m / max(c, 1e-9)))
        print("RESULT herd-stale-sets cachet=%d memcached=%d"
              % (med("leases", "stale_sets"), med("memcached", "stale_sets")))
    return 0

