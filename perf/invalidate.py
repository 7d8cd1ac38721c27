"""./perf/run invalidate: committed transactions become cache deletes, two ways, in one run.

  cachet:  the application only commits; cachet-invalidate reads the commits from a logical
           replication slot and deletes the keys, batched, in every pool.
  app:     the usual way: the application commits, then deletes the keys itself, one packet per
           server per transaction (pipelined, as a good client does).

The same load for both: workers commit transactions that each update --rows fresh rows of a
table (key item:<id>) at a fixed rate (open loop, evenly spaced), into a real PostgreSQL
(track_commit_timestamp on, fsync off: the disk's fsync belongs to the database, not to the
invalidation path); two pools of cachetd (pool a: two servers with ketama, pool b: one). A
poller reads every transaction's keys back from every pool until they are gone, so the latency
is measured from outside: PostgreSQL's commit timestamp to the poll that first saw every key of
the transaction gone from every pool (an upper bound: poll rounds take ~1 ms). Every key is
checked: a transaction whose keys never go is a lost invalidation.

Per rate and mode: sustained commits/s, deletes/s, deletes per packet, latency p50/p99/p99.99,
lost, the machine's load average, and for cachet where a backlog built up: the most WAL the
walsender had not yet sent, and the most it had sent that the daemon had not yet confirmed. Medians over --repeat runs; CSV and PNG in --out. Ends with
  RESULT invalidate-p99 cachet=<ms> app=<ms> ratio=<app/cachet>     (at --result-rate)
  RESULT invalidate-batching ratio=<deletes per packet> app=<deletes per packet>
"""

import csv
import datetime
import hashlib
import multiprocessing as mp
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import harness
import invalidate_common as ic
import pg
from perf.bench import PERF, REPO

HELP = "cachet-invalidate vs the application deleting after commit, on a real PostgreSQL"

KEY_SPACE = 1_600_000  # rows; each run takes a fresh range of ids
SYNC_ID = KEY_SPACE  # a row outside the runs' ranges, updated to see the daemon caught up


# ---- ketama, as the application's client computes it (libmemcached/twemproxy, md5)

def ketama_ring(names):
    points = []
    for index, name in enumerate(names):
        for i in range(40):  # 160 points per server of equal weight, 4 per digest
            d = hashlib.md5(("%s-%d" % (name, i)).encode()).digest()
            for x in range(4):
                points.append((struct.unpack_from("<I", d, 4 * x)[0], index))
    points.sort()
    return points


def ketama_server(points, key):
    import bisect
    h = struct.unpack_from("<I", hashlib.md5(key.encode()).digest())[0]
    i = bisect.bisect_left(points, (h, -1))
    return points[i % len(points)][1]


class Layout:
    """The pools: pool a = servers[0:2] (ketama), pool b = servers[2]."""

    def __init__(self, ports):
        self.ports = ports
        self.names_a = ["127.0.0.1:%d" % p for p in ports[:2]]
        self.ring = ketama_ring(self.names_a)

    def servers_of(self, key):
        """Server indexes (into ports) that hold key: one per pool."""
        return (ketama_server(self.ring, key), 2)


def txn_keys(base, j, rows):
    return ["item:%d" % (base + j * rows + k) for k in range(rows)]


# ---- the load: worker processes

def worker(conninfo, table, mode, layout_ports, base, rate, duration, rows, committed, stats):
    import psycopg2
    layout = Layout(layout_ports)
    c = psycopg2.connect(conninfo)
    c.autocommit = True
    cur = c.cursor()
    params = ", ".join("$%d" % (k + 1) for k in range(rows))
    cur.execute("PREPARE upd(%s) AS UPDATE %s SET v = v + 1 WHERE id IN (%s)"
                % (", ".join(["bigint"] * rows), table, params))
    socks = {}
    if mode == "app":
        for i, p in enumerate(layout_ports):
            s = socket.create_connection(("127.0.0.1", p))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks[i] = s
    interval = 1.0 / rate
    start = time.monotonic()
    j = deletes = packets = 0
    while True:
        due = start + j * interval
        now = time.monotonic()
        if now - start >= duration:
            break
        if due > now:
            time.sleep(due - now)
        ids = [base + j * rows + k for k in range(rows)]
        cur.execute("EXECUTE upd(%s)" % ", ".join(str(i) for i in ids))
        if mode == "app":
            per = {}
            for k in ("item:%d" % i for i in ids):
                for srv in layout.servers_of(k):
                    per.setdefault(srv, []).append(k)
            for srv, keys in per.items():
                socks[srv].sendall(b"".join(b"delete %s\r\n" % k.encode() for k in keys))
            for srv, keys in per.items():
                buf = b""
                while buf.count(b"\r\n") < len(keys):
                    buf += socks[srv].recv(65536)
                deletes += len(keys)
                packets += 1
        j += 1
        committed.value = j
    stats[:] = [j, time.monotonic() - start, deletes, packets]
    c.close()


# ---- the poller: when is each transaction's every key gone from every pool?

def poller(layout_ports, bases, rows, committed, stop, out_path, settle_s):
    layout = Layout(layout_ports)
    conns = [harness.Conn(p, timeout=10) for p in layout_ports]
    cursors = [0] * len(bases)
    pending = [dict() for _ in bases]  # txn -> keys not yet seen gone, per worker
    gone_at = []
    stop_at = None
    while True:
        if stop.value and stop_at is None:
            stop_at = time.monotonic() + settle_s
        if stop_at is not None and (time.monotonic() > stop_at or
                                    all(not p and cursors[w] >= committed[w].value
                                        for w, p in enumerate(pending))):
            break
        # Transactions committed since the last round join the watch list (with the servers of
        # their keys, computed once).
        for w, base in enumerate(bases):
            upto = min(committed[w].value, cursors[w] + 400)
            for j in range(cursors[w], upto):
                pending[w][j] = {k: layout.servers_of(k) for k in txn_keys(base, j, rows)}
            cursors[w] = max(cursors[w], upto)
        ask = {}
        for w, p in enumerate(pending):
            for j, keys in p.items():
                for k, srvs in keys.items():
                    for srv in srvs:
                        ask.setdefault(srv, []).append(k)
        if not ask:
            time.sleep(0.0002)
            continue
        held = set()
        for srv, keys in ask.items():
            for i in range(0, len(keys), 200):
                conns[srv].send(b"get " + b" ".join(k.encode() for k in keys[i:i + 200]) +
                                b"\r\n")
                raw = conns[srv].read_retrieval()
                held |= {k.decode() for k in harness.parse_values(raw)}
        now = time.time()
        for w, p in enumerate(pending):
            done = []
            for j, keys in p.items():
                for k in [k for k in keys if k not in held]:
                    del keys[k]
                if not keys:
                    done.append(j)
            for j in done:
                del p[j]
                gone_at.append((w, j, now))
    lost = sum(len(p) for p in pending)
    with open(out_path, "w") as f:
        for w, j, t in gone_at:
            f.write("%d %d %.6f\n" % (w, j, t))
        f.write("lost %d\n" % lost)


# ---- one run

def fill(ports, keys):
    for p in ports:
        s = socket.create_connection(("127.0.0.1", p))
        for i in range(0, len(keys), 5000):
            s.sendall(b"".join(b"set %s 0 0 1 noreply\r\nx\r\n" % k.encode()
                               for k in keys[i:i + 5000]))
        s.sendall(b"version\r\n")
        buf = b""
        while b"VERSION" not in buf:
            buf += s.recv(65536)
        s.close()


def cpu_seconds(pid):
    """User + system CPU seconds of a process (None when it cannot be read)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, TypeError):
        return None


def walsender_pid(db):
    rows = db.execute("SELECT pid FROM pg_stat_replication WHERE application_name = "
                      "'cachet-invalidate'")
    return rows[0][0] if rows else None


def percentile(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run_once(args, db, layout, daemon, mode, rate, base, tag):
    table = "items_d" if mode == "cachet" else "items_a"
    per_worker = rate / args.workers
    n_txn = int(per_worker * args.duration) + 10
    bases = [base + w * n_txn * args.rows for w in range(args.workers)]
    keys = [k for b in bases for j in range(n_txn) for k in txn_keys(b, j, args.rows)]
    # Each key on its ketama server in pool a, and in pool b.
    by_server = {}
    for k in keys:
        for srv in layout.servers_of(k):
            by_server.setdefault(srv, []).append(k)
    for srv, ks in by_server.items():
        fill([layout.ports[srv]], ks)
    before = daemon.metrics() if daemon else {}
    committed = [mp.Value("q", 0, lock=False) for _ in bases]
    stats = [mp.Array("d", 4, lock=False) for _ in bases]
    stop = mp.Value("b", 0, lock=False)
    out_path = Path(args.out) / ("poll-%s.txt" % tag)
    poll = mp.Process(target=poller, args=(layout.ports, bases, args.rows, committed, stop,
                                           str(out_path), args.settle))
    poll.start()
    workers = [mp.Process(target=worker, args=(db.conninfo(), table, mode, layout.ports, b,
                                               per_worker, args.duration, args.rows,
                                               committed[w], stats[w]))
               for w, b in enumerate(bases)]
    for p in workers:
        p.start()
    load0 = os.getloadavg()[0]
    procs = {"daemon": daemon.proc.pid, "walsender": walsender_pid(db)} if daemon else {}
    cpu0 = {k: cpu_seconds(p) for k, p in procs.items()}
    backlog = [0, 0]  # the most WAL bytes the walsender had not sent / the daemon not confirmed
    while any(p.is_alive() for p in workers):
        if daemon:
            for sent_lag, conf_lag in db.execute(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn), "
                    "pg_wal_lsn_diff(sent_lsn, flush_lsn) FROM pg_stat_replication "
                    "WHERE application_name = 'cachet-invalidate'") or []:
                backlog[0] = max(backlog[0], int(sent_lag or 0))
                backlog[1] = max(backlog[1], int(conf_lag or 0))
        time.sleep(0.25)
    for p in workers:
        p.join()
    cpu = {k: (cpu_seconds(p) or 0) - (cpu0[k] or 0) for k, p in procs.items()}
    stop.value = 1
    poll.join()
    # Commit times: PostgreSQL's own (track_commit_timestamp).
    commit_ts = {}
    for w, b in enumerate(bases):
        rows = db.execute("SELECT (id - %s) / %s, extract(epoch FROM pg_xact_commit_timestamp(xmin))"
                          " FROM %s WHERE id >= %s AND id < %s AND v > 0"
                          % (b, args.rows, table, b, b + n_txn * args.rows))
        for j, ts in rows:
            commit_ts[(w, int(j))] = float(ts)
    lat, lost, timeline = [], 0, []
    t0 = min(commit_ts.values(), default=0.0)
    with open(out_path) as f:
        for line in f:
            if line.startswith("lost"):
                lost = int(line.split()[1])
                continue
            w, j, t = line.split()
            ts = commit_ts.get((int(w), int(j)))
            if ts is not None:
                lat.append((float(t) - ts) * 1000)
                timeline.append((ts - t0, lat[-1]))
    out_path.unlink()
    commits = sum(int(s[0]) for s in stats)
    elapsed = max(s[1] for s in stats)
    if daemon:
        after = daemon.metrics()

        def delta(prefix, label=""):
            return sum(v - before.get(k, 0) for k, v in after.items()
                       if k.startswith(prefix) and label in k)
        deletes = delta("cachet_invalidate_deletes_sent_total")
        packets = delta("cachet_invalidate_packets_total")
        # Every key was filled where ketama puts it: a NOT_FOUND means a wrong server.
        not_found = delta("cachet_invalidate_acks_total", 'result="not_found"')
    else:
        deletes = sum(s[2] for s in stats)
        packets = sum(s[3] for s in stats)
        not_found = 0
    return {"mode": mode, "rate": rate, "commits_s": commits / elapsed,
            "deletes_s": deletes / elapsed, "per_packet": deletes / packets if packets else 0,
            "p50": percentile(lat, 0.50), "p99": percentile(lat, 0.99),
            "p9999": percentile(lat, 0.9999), "max": max(lat) if lat else None,
            "lost": lost, "measured": len(lat), "commits": commits, "not_found": not_found,
            "walsender_backlog": backlog[0], "daemon_backlog": backlog[1],
            "daemon_cpu": cpu.get("daemon"), "walsender_cpu": cpu.get("walsender"),
            "load": max(load0, os.getloadavg()[0]), "timeline": sorted(timeline)}


def wait_caught_up(daemon, db):
    """The daemon runs and has delivered everything committed so far: a transaction of its own
    table committed now is confirmed."""
    if daemon.proc is None:
        daemon.start()
    target = db.execute("SELECT pg_current_wal_insert_lsn()::text")[0][0]
    db.execute("UPDATE items_d SET v = v + 1 WHERE id = %d" % SYNC_ID)
    ic.wait_until(lambda: ic.lsn(daemon.status()["source"]["confirmed_lsn"]) > ic.lsn(target),
                  "the daemon to catch up", timeout=120)


def fmt(x, spec=".1f"):
    return "-" if x is None else format(x, spec)


def plot(rows, path, rates):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, color in (("cachet", "tab:blue"), ("app", "tab:orange")):
        for q, style in (("p50", "--"), ("p99", "-")):
            ys = [med(r[q] for r in rows if r["mode"] == mode and r["rate"] == rate)
                  for rate in rates]
            ax1.plot(rates, ys, style, marker="o", color=color, label="%s %s" % (mode, q))
        ys = [med(r["per_packet"] for r in rows if r["mode"] == mode and r["rate"] == rate)
              for rate in rates]
        ax2.plot(rates, ys, marker="o", color=color, label=mode)
    ax1.axhline(50, color="grey", linewidth=0.8, linestyle=":")
    ax1.set_xlabel("commits/s (target)")
    ax1.set_ylabel("commit to key gone from every pool (ms)")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.set_xlabel("commits/s (target)")
    ax2.set_ylabel("deletes per packet")
    ax2.axhline(10, color="grey", linewidth=0.8, linestyle=":")
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.suptitle("cachet-invalidate vs the application deleting after commit (medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def add_arguments(ap):
    ap.add_argument("--build", default=os.environ.get("CACHET_BUILD", str(REPO / "build")))
    ap.add_argument("--rates", default="1000,2000,5000", help="target commits/s, comma separated")
    ap.add_argument("--result-rate", type=int, default=5000, help="the rate of the RESULT lines")
    ap.add_argument("--duration", type=float, default=10, help="seconds per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per mode and rate")
    ap.add_argument("--rows", type=int, default=3, help="rows (keys) per transaction")
    ap.add_argument("--workers", type=int, default=2, help="load processes (connections)")
    ap.add_argument("--settle", type=float, default=30, help="s to wait for the last keys")
    ap.add_argument("--out", default=str(PERF / "results"))


def run(args):
    rates = [int(x) for x in args.rates.split(",")]
    build = Path(args.build)
    cachetd = build / "dataplane" / "daemon" / "cachetd"
    binary = build / "control" / "invalidate" / "cachet-invalidate"
    for b in (cachetd, binary):
        if not b.exists():
            sys.exit("%s not built (ninja -C %s)" % (b, build))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    print("invalidate: rates %s commits/s, %d rows per transaction, %d workers, %.0f s per run, "
          "%d repeats; pool a = 2 cachetd (ketama), pool b = 1 cachetd"
          % (rates, args.rows, args.workers, args.duration, args.repeat), flush=True)
    rows = []
    with pg.Postgres(settings={"track_commit_timestamp": "on", "max_connections": "40"}) as db:
        for t in ("items_d", "items_a"):
            db.execute("CREATE TABLE %s (id bigint PRIMARY KEY, v int NOT NULL)" % t)
            db.execute("INSERT INTO %s SELECT g, 0 FROM generate_series(0, %d) g"
                       % (t, SYNC_ID))
        servers = [harness.Server(str(cachetd), memory_mb=512, threads=1) for _ in range(3)]
        layout = Layout([s.port for s in servers])
        body = (ic.pool_toml("a", layout.names_a) +
                ic.pool_toml("b", ["127.0.0.1:%d" % layout.ports[2]]) +
                ic.rule_toml("items_d", ["item:{id}"]))
        daemon = ic.Invalidate(str(binary), db, body, slot="bench")
        print("cachet-invalidate config:\n  " + open(daemon.config_path).read()
              .replace("\n", "\n  "), flush=True)
        base = 0
        try:
            for rep in range(args.repeat):
                for mode in (("cachet", "app") if rep % 2 == 0 else ("app", "cachet")):
                    for rate in rates:
                        if mode == "cachet":
                            wait_caught_up(daemon, db)
                        elif daemon.proc is not None:
                            daemon.stop()  # the usual way: no daemon
                        r = run_once(args, db, layout, daemon if mode == "cachet" else None,
                                     mode, rate, base, "%s-%d-%d" % (mode, rate, rep))
                        base += int(rate * args.duration + 10 * args.workers) * args.rows
                        if base + 2 * rate * args.duration * args.rows >= KEY_SPACE:
                            base = 0  # keys are filled again before each run
                        r["repeat"] = rep
                        rows.append(r)
                        print("  %-6s %5d/s: %7.0f commits/s %8.0f deletes/s %5.1f per packet  "
                              "p50 %6s  p99 %6s  p99.99 %6s ms  lost %d  load %.1f%s%s"
                              % (mode, rate, r["commits_s"], r["deletes_s"], r["per_packet"],
                                 fmt(r["p50"]), fmt(r["p99"]), fmt(r["p9999"]), r["lost"],
                                 r["load"],
                                 "  backlog: walsender %d B, daemon %d B; CPU s: daemon %.2f, "
                                 "walsender %.2f" % (r["walsender_backlog"], r["daemon_backlog"],
                                                     r["daemon_cpu"] or 0, r["walsender_cpu"] or 0)
                                 if mode == "cachet" else "",
                                 "  NOT_FOUND %d" % r["not_found"] if r["not_found"] else ""),
                              flush=True)
        finally:
            daemon.cleanup()
            for s in servers:
                s.stop()
    fields = ["repeat", "mode", "rate", "commits_s", "deletes_s", "per_packet", "p50", "p99",
              "p9999", "max", "lost", "measured", "commits", "not_found", "walsender_backlog",
              "daemon_backlog", "daemon_cpu", "walsender_cpu", "load"]
    csv_path = Path(args.out) / ("invalidate-%s.csv" % stamp)
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in fields})
    # Every transaction's latency by its commit time: shows whether a tail is a start-up stall,
    # periodic, or a backlog that grows.
    timeline_path = Path(args.out) / ("invalidate-%s-timeline.csv" % stamp)
    with open(timeline_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["repeat", "mode", "rate", "commit_s", "latency_ms"])
        for r in rows:
            for ts, ms in r["timeline"]:
                w.writerow([r["repeat"], r["mode"], r["rate"], "%.6f" % ts, "%.3f" % ms])
    png_path = Path(args.out) / ("invalidate-%s.png" % stamp)
    plot(rows, png_path, rates)
    print("\nmedians of %d runs:" % args.repeat)
    print("  %-6s %6s %10s %10s %8s %8s %8s %9s %5s" % ("mode", "rate", "commits/s",
                                                       "deletes/s", "per pkt", "p50 ms",
                                                       "p99 ms", "p99.99 ms", "lost"))
    for mode in ("cachet", "app"):
        for rate in rates:
            sel = [r for r in rows if r["mode"] == mode and r["rate"] == rate]
            print("  %-6s %6d %10.0f %10.0f %8.1f %8s %8s %9s %5d"
                  % (mode, rate, med(r["commits_s"] for r in sel), med(r["deletes_s"] for r in sel),
                     med(r["per_packet"] for r in sel), fmt(med(r["p50"] for r in sel)),
                     fmt(med(r["p99"] for r in sel)), fmt(med(r["p9999"] for r in sel)),
                     sum(r["lost"] for r in sel)))
    print("results: %s, %s, %s" % (csv_path, timeline_path, png_path))
    res = [r for r in rows if r["rate"] == args.result_rate] or \
        [r for r in rows if r["rate"] == max(rates)]
    c99 = med(r["p99"] for r in res if r["mode"] == "cachet")
    a99 = med(r["p99"] for r in res if r["mode"] == "app")
    cb = med(r["per_packet"] for r in res if r["mode"] == "cachet")
    ab = med(r["per_packet"] for r in res if r["mode"] == "app")
    print("RESULT invalidate-p99 cachet=%s app=%s ratio=%s"
          % (fmt(c99, ".2f"), fmt(a99, ".2f"), fmt(a99 / c99 if c99 and a99 else None, ".3f")))
    print("RESULT invalidate-batching ratio=%s app=%s" % (fmt(cb, ".1f"), fmt(ab, ".1f")))
    return 0 if all(r["lost"] == 0 for r in rows) else 1

