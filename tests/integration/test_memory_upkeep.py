"""Memory that comes back and follows the workload (issue 9), observed through `stats` only:

1. Transient item cache: 50,000 items with a 2 s TTL and 50,000 without, then no request that
   touches an item: `curr_items` comes down to 50,000 and `transient_reaped` shows the other
   50,000 (and no `get_expired`: no request found them).
2. flush_all, then no request: `stats slabs` used chunks come back to zero (the sweeps).
3. The rebalancer on a small -m: small items fill every page, then big ones churn. With
   `slabs automove 0` the rebalancer moves no page; `slabs automove 1` makes pages move toward
   the big items' class; back to 0, moves stop again.

Every wait is for a state (a count in `stats`), bounded by a generous timeout; the engine's
ticks (maintenance:transient:runs, one a second) stand for "time passed" where a test must show
that something did not happen. Stock memcached has neither the transient cache nor these
counters, so this test is for cachetd only.
"""

import time

import harness

N = 50_000
WAIT_S = 60  # generous: a busy machine


def pipeline(c, lines, batch=2000):
    """Sends requests (each with noreply) in batches, then waits for the server to catch up."""
    for i in range(0, len(lines), batch):
        c.send(b"".join(lines[i:i + batch]))
        r = c.request(b"version\r\n")
        if not r.startswith(b"VERSION"):
            raise AssertionError("version -> %s" % harness.show(r))


def wait_for(c, cond, timeout=WAIT_S):
    """Polls `stats` until cond(stats) holds; returns the last stats and whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        st = harness.stats(c)
        if cond(st):
            return st, True
        if time.monotonic() > deadline:
            return st, False
        time.sleep(0.1)


def num(st, name):
    return int(st.get(name, b"0"))


def used_chunks(c):
    st = harness.stats(c, b"slabs")
    return sum(int(v) for k, v in st.items() if k.endswith(":used_chunks"))


def transient_and_flush(t, args):
    with harness.Server(args.server, memory_mb=64) as srv, srv.connect(timeout=10) as c:
        t.begin("transient items come back without requests")
        val = b"0123456789"
        lines = []
        for i in range(N):
            lines.append(b"set t:%d 0 2 %d noreply\r\n%s\r\n" % (i, len(val), val))
            lines.append(b"set l:%d 0 0 %d noreply\r\n%s\r\n" % (i, len(val), val))
        pipeline(c, lines)
        st = harness.stats(c)
        t.eq(num(st, "total_items"), 2 * N, "all sets stored")
        st, ok = wait_for(c, lambda s: num(s, "curr_items") == N
                          and num(s, "transient_reaped") >= N)
        t.check(ok, "curr_items %d, transient_reaped %d (want %d, >= %d)"
                % (num(st, "curr_items"), num(st, "transient_reaped"), N, N))
        t.eq(num(st, "get_expired"), 0, "no request found an expired item")
        t.check(num(st, "maintenance:transient:items") >= N,
                "the maintenance engine's transient task counts them",
                harness.show(st.get("maintenance:transient:items")))
        t.eq(used_chunks(c), N, "stats slabs: used chunks are the long-lived items")

        t.begin("flush_all: used chunks back to zero without requests")
        t.eq(c.request(b"flush_all\r\n"), b"OK\r\n", "flush_all")
        deadline = time.monotonic() + WAIT_S
        used = used_chunks(c)
        while used != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
            used = used_chunks(c)
        t.eq(used, 0, "used chunks after flush_all")
        st = harness.stats(c)
        t.eq(num(st, "curr_items"), 0, "curr_items after flush_all")
        t.check(num(st, "crawler_reclaimed") >= N, "the sweeps reclaimed the flushed items",
                harness.show(st.get("crawler_reclaimed")))
        srv.check_alive(t)


def rebalancer_moves(st):
    """Pages moved by the rebalancer (not by an allocation that found no other memory)."""
    return num(st, "slabs_moved") - num(st, "slabs_moved_inline")


def class_pages(c, item_bytes):
    """(class id, total_pages) of the smallest class whose chunks hold item_bytes."""
    st = harness.stats(c, b"slabs")
    best = None
    for k, v in st.items():
        if k.endswith(":chunk_size") and int(v) >= item_bytes:
            cls = int(k.split(":")[0])
            if best is None or int(v) < best[1]:
                best = (cls, int(v))
    if best is None:
        return None, 0
    return best[0], int(st.get("%d:total_pages" % best[0], b"0"))


def automove(t, args):
    small, big = b"s" * 100, b"b" * 900
    n_big = 6000  # about 6 MB: more than the one page the big class gets by itself
    with harness.Server(args.server, memory_mb=16,
                        extra=["--slab-automove-interval-ms", "200"]) as srv, \
            srv.connect(timeout=10) as c:
        t.begin("slabs automove 0: no page moves")
        t.eq(c.request(b"slabs automove 0\r\n"), b"OK\r\n", "slabs automove 0")
        t.eq(harness.stats(c, b"settings").get("slab_automove"), b"0", "stats settings shows 0")
        # Small items take every page (the cache evicts them).
        i = 0
        while num(harness.stats(c), "evictions") == 0 and i < 400_000:
            pipeline(c, [b"set s:%d 0 0 %d noreply\r\n%s\r\n" % (j, len(small), small)
                         for j in range(i, i + 20_000)])
            i += 20_000
        t.check(num(harness.stats(c), "evictions") > 0, "small items fill the cache (%d)" % i)
        churn = [b"set b:%d 0 0 %d noreply\r\n%s\r\n" % (j, len(big), big) for j in range(n_big)]
        pipeline(c, churn)
        big_item = 40 + len(b"b:%d" % (n_big - 1)) + len(big) + 2
        cls, pages0 = class_pages(c, big_item)
        t.check(cls is not None and pages0 >= 1, "the big items' class %s has %d page(s)"
                % (cls, pages0))
        moved0 = rebalancer_moves(harness.stats(c))
        ticks0 = num(harness.stats(c), "maintenance:transient:runs")
        st, ok = wait_for(c, lambda s: pipeline(c, churn) or
                          num(s, "maintenance:transient:runs") >= ticks0 + 3)
        t.check(ok, "the engine ticked 3 times while big items churned")
        t.eq(rebalancer_moves(st), moved0, "no page moved by the rebalancer in mode 0")
        t.eq(class_pages(c, big_item)[1], pages0, "the big class kept its pages")

        t.begin("slabs automove 1: pages move toward the big items")
        t.eq(c.request(b"slabs automove 1\r\n"), b"OK\r\n", "slabs automove 1")
        t.eq(harness.stats(c, b"settings").get("slab_automove"), b"1", "stats settings shows 1")
        # The big class also gains pages inline (an allocation that finds no free chunk takes
        # a page itself), so the wait is for the rebalancer's own moves, not for a page count.
        st, ok = wait_for(c, lambda s: pipeline(c, churn) or
                          (rebalancer_moves(s) >= 3
                           and num(s, "maintenance:rebalance:pages") >= 3))
        t.check(ok and class_pages(c, big_item)[1] >= pages0 + 3,
                "the big class went from %d pages to %d"
                % (pages0, class_pages(c, big_item)[1]))
        t.check(rebalancer_moves(st) >= 3, "stats: slabs_moved %d (inline %d)"
                % (num(st, "slabs_moved"), num(st, "slabs_moved_inline")))
        t.check(num(st, "maintenance:rebalance:pages") >= 3, "the engine counts the moves")
        items = harness.stats(c, b"items")
        t.check(int(items.get("items:%d:number" % cls, b"0")) > 0
                and int(items.get("items:%d:age" % cls, b"-1")) >= 0,
                "stats items reports the class (number, age)")

        t.begin("slabs automove 0 again: moves stop")
        t.eq(c.request(b"slabs automove 0\r\n"), b"OK\r\n", "slabs automove 0")
        st, ok = wait_for(c, lambda s: num(s, "slab_reassign_running") == 0)
        t.check(ok, "a move under way finished")
        moved1 = rebalancer_moves(st)
        ticks1 = num(st, "maintenance:transient:runs")
        st, ok = wait_for(c, lambda s: pipeline(c, churn) or
                          num(s, "maintenance:transient:runs") >= ticks1 + 3)
        t.check(ok, "the engine ticked 3 times while big items churned")
        t.eq(rebalancer_moves(st), moved1, "no page moved after automove 0")
        srv.check_alive(t)


def main():
    args = harness.parse_args(__doc__)
    t = harness.Checker("memory_upkeep", args.verbose)
    t.run_section(transient_and_flush, t, args)
    t.run_section(automove, t, args)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=170)
