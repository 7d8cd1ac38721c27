"""./perf/run soak [minutes]: a long mixed load with hostile clients beside it (issue 10, item 3),
cachetd first, then stock memcached with the same flags, load and hostile clients.

Well-behaved clients (their every reply is checked; a wrong value, an error reply or a timeout is
a failure and makes the exit status non-zero):
  mixed       --clients processes, one connection each, at --rate requests/s in all: get, set,
              multiget (2-10 keys), delete, incr, cas (gets + cas, and a stale cas that must
              answer EXISTS), meta (ms/mg/md); values of 16 B to 1,000,000 B (90 % up to 4 KB,
              9 % up to 100 KB, 1 % up to 1 MB), each value naming its key and version with a
              body that depends on the version, so a torn or misplaced value is caught. The key
              space (--keys) is larger than -m: the cache evicts, and a miss is not a failure.
  memcslap    libmemcached-tools' memcslap, a client we did not write, run every
              --memcslap-every s (set, get, mget in turn; bounded by --execute-number); any
              error line or a non-zero exit is counted.
Hostile clients, all on 127.0.0.1, each loop bounded by the run's deadline:
  slow readers   --slow-readers connections held the whole run that pipeline gets of a
                 1,000,000-byte value and multigets of it (--slow-multiget keys), plus two
                 re-opened every 30 s that pipeline single gets of it, as fast as the socket
                 takes them; none ever reads a byte (receive buffer 4 KB)
  half-open      --idle connections opened and never used (a peer that vanished looks like
                 this), and every 2 s a connection that sends a request and shuts down its
                 write side (the server must answer and close)
  stallers       every 1.5 s a connection that sends half a request (half a 500 KB set block,
                 a get line with no newline, half a meta command, half a binary header) and
                 stalls 10 s, then closes (FIN or RST, alternately)
  churn          every --churn-every s, as many connections as -c plus 32 at once, held 1 s,
                 then closed (half of them with RST); memcslap starts never overlap a burst
  udp flood      one UDP socket, bursts of 3 s every 10 s at --udp-rate datagrams/s: gets of
                 small and 1 MB keys, header-only and multi-packet frames, junk; never read
                 (cachetd runs with --udp-src-rate, memcached has no such limit)

Every second: the server's RSS (VmRSS, and apart its heap, RssAnon, and its mapped memory,
RssShmem + RssFile: cachetd's arena), open descriptors (/proc/<pid>/fd), curr_connections and
the error counters of `stats` (rejected_connections, udp_drop_*, store_no_memory, evictions,
memcached's listen_disabled_num, conn_yields, response_obj_oom, read_buf_oom), and the
well-behaved requests and failures so far. Warm-up is the first 20 % of each arm (after the key
space was written once); RSS growth is (max - min) / min over the samples after warm-up (the
last sample against the first beside it). After the load, up to 20 s for the descriptors and
connections to come back to their baseline (taken before any client connected).

Pass (cachetd): RSS growth <= 5 %, descriptors back to baseline, no well-behaved failure, no
memcslap error. The memcached arm runs --memcached-minutes (default half of the cachetd arm's,
at least 0.5) and is reported, not judged. Output: perf/results/soak-<time>.csv (every sample of
both arms), soak-<time>.png, and

  RESULT soak cachet=<rss growth %> memcached=<rss growth %> ratio=<memcached/cachet>
      cachet-failed=<n> memcached-failed=<n> cachet-fd-delta=<n> memcached-fd-delta=<n>
      cachet-memcslap-errors=<n> memcached-memcslap-errors=<n> (one line)
  RESULT soak-udp cachet-in=<n> cachet-dropped=<n> (by reason) ...
"""

import csv
import datetime
import multiprocessing as mp
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import harness
from perf.bench import PERF, add_binary_arguments
from perf.soak_clients import (Client, churn, idle_and_half_closed, memcslap_loop, mixed_client,
                                 preload, raise_nofile, slow_readers, stallers, udp_flood)

HELP = "soak: mixed load with hostile clients for minutes; RSS, fds, errors vs memcached"

WARMUP_SHARE = 0.20              # the first 20 % of an arm is warm-up
RSS_LIMIT_PCT = 5.0
SETTLE_S = 20.0                  # most time allowed for fds/connections to come back
STAT_COLUMNS = ["curr_connections", "total_connections", "rejected_connections", "curr_items",
                "evictions", "store_no_memory", "udp_datagrams_in", "udp_drop_frame_short",
                "udp_drop_frame_multipart", "udp_drop_rate_limited", "udp_drop_reply_cut",
                "listen_disabled_num", "conn_yields", "response_obj_oom", "read_buf_oom",
                "bytes", "slabs_moved", "hash_bytes"]
UDP_DROPS = ["udp_drop_frame_short", "udp_drop_frame_multipart", "udp_drop_rate_limited",
             "udp_drop_reply_cut"]


# ---------------------------------------------------------------------------------------------
# One arm


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def rss_parts(pid):
    """(VmRSS, RssAnon, RssFile + RssShmem) in kB: the heap apart from the mapped arena."""
    got = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    got[k] = int(v.split()[0])
    except OSError:
        pass
    return (got.get("VmRSS", 0), got.get("RssAnon", 0),
            got.get("RssFile", 0) + got.get("RssShmem", 0))


def sample(server, statc, t0, phase, shared_ops, nclients):
    s = statc.stats()
    rss, anon, mapped = rss_parts(server.pid)
    row = {"t": round(time.monotonic() - t0, 2), "phase": phase, "rss_kb": rss,
           "rss_anon_kb": anon, "rss_mapped_kb": mapped, "fds": proc_fds(server.pid)}
    for col in STAT_COLUMNS:
        row[col] = s.get(col, "")
    row["wb_ops"] = sum(shared_ops[2 * i] for i in range(nclients))
    row["wb_failed"] = sum(shared_ops[2 * i + 1] for i in range(nclients))
    return row


def run_arm(which, binary, minutes, args):
    seconds = minutes * 60.0
    extra = ["--udp-src-rate", str(args.udp_src_rate)] if which == "cachet" else []
    server = harness.Server(binary, udp=True, memory_mb=args.memory_mb, threads=args.threads,
                            conns=args.conns, item_max="1m",
                            extra=extra, name=which)
    rows, procs = [], []
    try:
        statc = Client(server.port)
        t0 = time.monotonic()
        base = sample(server, statc, t0, "baseline", [0, 0], 0)
        total = preload(server.port, args.keys)
        print("  %s: pid %d port %d; baseline %d fds, %d connection(s), RSS %.1f MB; preloaded "
              "%d keys, %.0f MB" % (which, server.pid, server.port, base["fds"],
                                    int(base["curr_connections"]), base["rss_kb"] / 1024,
                                    args.keys, total / 1e6), flush=True)
        rows.append(base)
        start = time.monotonic()
        deadline = start + seconds
        warm_end = start + WARMUP_SHARE * seconds
        ops = mp.Array("q", 2 * args.clients, lock=False)
        hostile = mp.Array("q", len(NAMES), lock=False)
        lock = mp.Lock()
        outq = mp.Queue()
        for i in range(args.clients):
            procs.append(mp.Process(target=mixed_client, args=(
                i, server.port, args.keys, args.rate / args.clients, deadline, ops, outq,
                1000 * i + 17), daemon=True))
        procs.append(mp.Process(target=slow_readers, args=(
            server.port, args.slow_readers, args.slow_multiget, deadline, hostile), daemon=True))
        procs.append(mp.Process(target=idle_and_half_closed, args=(
            server.port, args.idle, deadline, hostile), daemon=True))
        procs.append(mp.Process(target=stallers, args=(server.port, deadline, hostile),
                                daemon=True))
        procs.append(mp.Process(target=churn, args=(
            server.port, args.conns, args.churn_every, deadline, lock, hostile), daemon=True))
        procs.append(mp.Process(target=udp_flood, args=(
            server.udp_port, args.udp_rate, deadline, hostile), daemon=True))
        for p in procs:
            p.start()
        slap = {"runs": 0, "errors": 0, "detail": []}
        th = threading.Thread(target=memcslap_loop,
                              args=(server.port, args, deadline, lock, slap), daemon=True)
        th.start()
        next_s = start + 1
        last_print = start
        while time.monotonic() < deadline:
            time.sleep(max(0.0, next_s - time.monotonic()))
            next_s += 1
            phase = "warmup" if time.monotonic() < warm_end else "load"
            r = sample(server, statc, t0, phase, ops, args.clients)
            rows.append(r)
            if not server.alive():
                print("  %s EXITED (status %s):\n%s" % (which, server.proc.returncode,
                                                        server.log_tail()), flush=True)
                break
            if time.monotonic() - last_print >= max(10.0, seconds / 12):
                last_print = time.monotonic()
                print("    t=%4.0fs RSS %7.1f MB fds %4s conns %4s ops %7d failed %d"
                      % (r["t"], r["rss_kb"] / 1024, r["fds"], r["curr_connections"],
                         r["wb_ops"], r["wb_failed"]), flush=True)
        results = {}
        for p in procs:
            p.join(timeout=30)
        for _ in range(args.clients):
            try:
                idx, counts, fails = outq.get(timeout=10)
                results[idx] = (counts, fails)
            except Exception:  # noqa: BLE001 - a client that never reported is a failure
                break
        th.join(timeout=90)
        # Settle: descriptors and connections back to baseline.
        settle_end = time.monotonic() + SETTLE_S
        while True:
            r = sample(server, statc, t0, "settle", ops, args.clients)
            rows.append(r)
            if (r["fds"] == base["fds"] and r["curr_connections"] == base["curr_connections"]) \
                    or time.monotonic() >= settle_end:
                break
            time.sleep(1)
        alive = server.alive()
        statc.close()
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
        server.stop()
    failed = sum(c["failed"] for c, _ in results.values()) + (args.clients - len(results))
    loaded = [r for r in rows if r["phase"] == "load"]
    rss = [r["rss_kb"] for r in loaded] or [0]
    growth = 100.0 * (max(rss) - min(rss)) / max(min(rss), 1)
    last_vs_first = 100.0 * (rss[-1] - rss[0]) / max(rss[0], 1)
    tenth = max(1, len(rss) // 10)
    head, tail = sorted(rss[:tenth])[tenth // 2], sorted(rss[-tenth:])[tenth // 2]
    anon = [r["rss_anon_kb"] for r in loaded] or [0]
    mapped = [r["rss_mapped_kb"] for r in loaded] or [0]
    end = rows[-1]
    return {
        "which": which, "rows": rows, "minutes": minutes, "alive": alive,
        "ops": sum(c["ops"] for c, _ in results.values()),
        "miss": sum(c["miss"] for c, _ in results.values()),
        "failed": failed, "fail_detail": [f for _, fs in results.values() for f in fs],
        "rss_growth": growth, "rss_last_vs_first": last_vs_first,
        "rss_trend": 100.0 * (tail - head) / max(head, 1),
        "anon_mb": (min(anon) / 1024, max(anon) / 1024, anon[0] / 1024, anon[-1] / 1024),
        "mapped_mb": (min(mapped) / 1024, max(mapped) / 1024, mapped[0] / 1024,
                      mapped[-1] / 1024),
        "rss_min_mb": min(rss) / 1024, "rss_max_mb": max(rss) / 1024,
        "fd_base": base["fds"], "fd_end": end["fds"], "fd_delta": (end["fds"] or 0) - base["fds"],
        "fd_max": max(r["fds"] or 0 for r in rows),
        "conn_delta": int(end["curr_connections"] or 0) - int(base["curr_connections"] or 0),
        "conn_max": max(int(r["curr_connections"] or 0) for r in rows),
        "memcslap_runs": slap["runs"], "memcslap_errors": slap["errors"],
        "memcslap_detail": slap["detail"],
        "hostile": list(hostile), "end": end,
    }


NAMES = ["slow readers re-opened", "half-closed not closed by the server in 5 s",
         "half-closed not answered", "stalled half requests", "churn connections served",
         "churn connections refused", "churn bursts", "udp datagrams sent",
         "half-closed with a socket error"]


def report(a):
    h = a["hostile"]
    e = a["end"]
    print("\n  %s (%.1f min): %s" % (a["which"], a["minutes"],
                                    "running at the end" if a["alive"] else "EXITED"))
    print("    well-behaved: %d requests, %d misses, %d failed; memcslap %d runs, %d errors"
          % (a["ops"], a["miss"], a["failed"], a["memcslap_runs"], a["memcslap_errors"]))
    for f in a["fail_detail"][:8] + a["memcslap_detail"]:
        print("      FAIL " + f)
    print("    RSS after warm-up %.1f-%.1f MB: growth (max-min)/min %.2f %%, last vs first "
          "%+.2f %%" % (a["rss_min_mb"], a["rss_max_mb"], a["rss_growth"],
                       a["rss_last_vs_first"]))
    print("    RSS trend (median of the last tenth vs the first tenth after warm-up) %+.2f %%; "
          "heap (RssAnon) %.1f-%.1f MB, first %.1f last %.1f; mapped (arena, RssShmem+RssFile) "
          "%.1f-%.1f MB, first %.1f last %.1f" % ((a["rss_trend"],) + a["anon_mb"] +
                                                   a["mapped_mb"]))
    print("    fds: baseline %d, peak %d, end %s (delta %+d); connections: peak %d, end delta "
          "%+d" % (a["fd_base"], a["fd_max"], a["fd_end"], a["fd_delta"], a["conn_max"],
                   a["conn_delta"]))
    print("    hostile: " + ", ".join("%s %d" % (n, v) for n, v in zip(NAMES, h)))
    print("    server counters: " + ", ".join(
        "%s %s" % (k, e[k]) for k in STAT_COLUMNS[2:] if e.get(k, "") != ""))


def plot(path, arms):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (no PNG: python3-matplotlib not importable by %s)" % sys.executable)
        return None
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    panels = [("RSS (MB)", lambda r: r["rss_kb"] / 1024), ("open fds", lambda r: r["fds"]),
              ("curr_connections", lambda r: int(r["curr_connections"] or 0)),
              ("well-behaved requests/s", None)]
    for a in arms:
        rows = [r for r in a["rows"] if r["phase"] != "baseline"]
        ts = [r["t"] for r in rows]
        for ax, (label, f) in zip(axes, panels):
            if f is None:
                ys = [0] + [max(0, rows[i]["wb_ops"] - rows[i - 1]["wb_ops"]) /
                            max(rows[i]["t"] - rows[i - 1]["t"], 1e-3) for i in range(1, len(rows))]
            else:
                ys = [f(r) for r in rows]
            ax.plot(ts, ys, label=a["which"])
            ax.set_ylabel(label)
        warm = [r["t"] for r in a["rows"] if r["phase"] == "load"]
        if warm:
            axes[0].axvline(warm[0], linestyle=":", color="gray")
    axes[0].set_title("Soak: mixed load + slow readers, half-open, stallers, churn, UDP flood")
    axes[-1].set_xlabel("second (dotted: end of warm-up)")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def add_arguments(ap):
    add_binary_arguments(ap, loadgen=False)
    ap.add_argument("minutes", nargs="?", type=float, default=30.0,
                    help="length of the cachetd arm in minutes (default 30; fractions work)")
    ap.add_argument("--memcached-minutes", type=float,
                    help="length of the memcached arm (default half the cachetd arm, >= 0.5)")
    ap.add_argument("--memory-mb", type=int, default=128, help="-m of both servers")
    ap.add_argument("--threads", type=int, default=2, help="-t of both servers")
    ap.add_argument("--conns", type=int, default=256, help="-c of both servers")
    ap.add_argument("--keys", type=int, default=12000,
                    help="shared key space (about 12 KB a value on average: > -m)")
    ap.add_argument("--clients", type=int, default=2, help="well-behaved client processes")
    ap.add_argument("--rate", type=float, default=1200, help="well-behaved requests/s in all")
    ap.add_argument("--slow-readers", type=int, default=8)
    ap.add_argument("--slow-multiget", type=int, default=10,
                    help="keys of the slow readers' multiget (each a 1 MB value)")
    ap.add_argument("--idle", type=int, default=16, help="idle (half-open) connections")
    ap.add_argument("--churn-every", type=float, default=15.0)
    ap.add_argument("--udp-rate", type=float, default=4000, help="flood datagrams/s in a burst")
    ap.add_argument("--udp-src-rate", type=int, default=1000, help="cachetd --udp-src-rate")
    ap.add_argument("--memcslap-every", type=float, default=10.0)
    ap.add_argument("--execute-number", type=int, default=1000, help="memcslap -e")
    ap.add_argument("--arms", default="cachet,memcached")
    ap.add_argument("--out", default=str(PERF / "results"))


def run(args):
    mp.set_start_method("fork", force=True)
    raise_nofile()
    args.cachetd = str(args.cachetd or Path(args.build) / "dataplane" / "daemon" / "cachetd")
    for what, p in (("cachetd", args.cachetd), ("memcached", args.memcached),
                    ("memcslap", shutil.which("memcslap") or "/usr/bin/memcslap")):
        if not os.access(p, os.X_OK):
            sys.exit(f"perf/run soak: {what} not found at {p}")
    mc_minutes = args.memcached_minutes or max(0.5, args.minutes / 2)
    arms = [a for a in args.arms.split(",") if a]
    print("soak: cachetd %.1f min, memcached %.1f min; -m %d -t %d -c %d -I 1m -U on; %d keys, "
          "%d well-behaved procs at %.0f req/s + memcslap every %.0f s; %d slow readers "
          "(+2 cycling, multiget %d), %d idle, stallers, churn every %.0f s, UDP %0.f/s bursts "
          "(cachetd --udp-src-rate %d)"
          % (args.minutes, mc_minutes, args.memory_mb, args.threads, args.conns, args.keys,
             args.clients, args.rate, args.memcslap_every, args.slow_readers,
             args.slow_multiget, args.idle, args.churn_every, args.udp_rate,
             args.udp_src_rate), flush=True)
    if os.getloadavg()[0] > 0.5:
        print("  note: load average %.2f before start: other jobs share the CPUs"
              % os.getloadavg()[0])
    res = {}
    for which in arms:
        binary = args.cachetd if which == "cachet" else args.memcached
        res[which] = run_arm(which, binary, args.minutes if which == "cachet" else mc_minutes,
                             args)
        report(res[which])
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / ("soak-%s.csv" % stamp)
    cols = ["server", "t", "phase", "rss_kb", "rss_anon_kb", "rss_mapped_kb", "fds"] + STAT_COLUMNS + ["wb_ops", "wb_failed"]
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for a in res.values():
            for r in a["rows"]:
                w.writerow(dict(r, server=a["which"]))
    png = plot(out / ("soak-%s.png" % stamp), list(res.values()))
    print("\n  wrote %s%s" % (csv_path, (" and %s" % png) if png else ""))
    c, m = res.get("cachet"), res.get("memcached")
    g = lambda a, k: a[k] if a else float("nan")  # noqa: E731
    print("RESULT soak cachet=%.2f memcached=%.2f ratio=%.2f cachet-failed=%s "
          "memcached-failed=%s cachet-fd-delta=%s memcached-fd-delta=%s "
          "cachet-memcslap-errors=%s memcached-memcslap-errors=%s"
          % (g(c, "rss_growth"), g(m, "rss_growth"),
             g(m, "rss_growth") / max(g(c, "rss_growth"), 0.01) if c and m else float("nan"),
             g(c, "failed"), g(m, "failed"), g(c, "fd_delta"), g(m, "fd_delta"),
             g(c, "memcslap_errors"), g(m, "memcslap_errors")))
    parts = []
    for a in res.values():
        e = a["end"]
        dropped = sum(int(e[k] or 0) for k in UDP_DROPS if e.get(k, "") != "")
        parts.append("%s-sent=%d %s-in=%s %s-dropped=%d" % (
            a["which"], a["hostile"][7], a["which"], e.get("udp_datagrams_in") or "-",
            a["which"], dropped))
        if a["which"] == "cachet":
            parts.append(" ".join("cachet-%s=%s" % (k[len("udp_drop_"):], e[k])
                                  for k in UDP_DROPS))
    print("RESULT soak-udp " + " ".join(parts))
    if c is None:
        return 0
    ok = (c["alive"] and c["failed"] == 0 and c["memcslap_errors"] == 0 and c["fd_delta"] == 0
          and c["rss_growth"] <= RSS_LIMIT_PCT)
    print("soak: cachetd %s (RSS growth <= %.0f %%, fds back to baseline, no failed request)"
          % ("PASSES" if ok else "FAILS", RSS_LIMIT_PCT))
    return 0 if ok else 1
