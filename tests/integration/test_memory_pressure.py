"""A full cache keeps accepting writes: with -m 64, write 200 MB of values in eight size bands
(50 B .. 200 KB), then check that every set was STORED (the cache evicts, it does not refuse),
that the most recent 4 MB of items read back byte-exact, that a value of any other size (100 B ..
900 KB) can still be stored and read, and that RSS stays bounded.

Recorded from stock memcached 1.6.18: all 5881 sets STORED, ~2400 evictions, the recent items
all present, and every size of the ladder STORED at once. (memcached lets a slab class that has
no page take its first page even when the memory limit is reached, and moves pages between
classes with slab_reassign/automove.)
"""

import random
import time

import harness

MEMORY_MB = 64
FILL_MB = 200
SIZES = [50, 200, 700, 2000, 6000, 20000, 60000, 200000]
LADDER = [100, 1000, 5000, 10000, 50000, 100000, 300000, 500000, 900000]
RECENT_MB = 4


def main():
    args = harness.parse_args(__doc__, lambda p: p.add_argument(
        "--rss-slack-mb", type=int, default=200, help="allowed RSS above -m"))
    t = harness.Checker("eviction_pressure", args.verbose)
    with harness.Server(args.server, memory_mb=MEMORY_MB, item_max=1024 * 1024) as srv:
        rnd = random.Random(5)
        with srv.connect(timeout=10) as c:
            t.begin("fill %d MB into -m %d" % (FILL_MB, MEMORY_MB))
            errors = {}
            written = []
            total = 0
            i = 0
            start = time.monotonic()
            while total < FILL_MB << 20 and time.monotonic() - start < 60:
                n = rnd.choice(SIZES) + rnd.randrange(50)
                key = b"fill:%d" % i
                c.send(b"set %s %d 0 %d\r\n" % (key, i, n) + bytes([i % 251]) * n + b"\r\n")
                r = c.line()
                if r != b"STORED\r\n":
                    errors[r] = errors.get(r, 0) + 1
                written.append((key, i, n))
                total += n
                i += 1
            t.check(total >= FILL_MB << 20, "wrote %d MB in %d sets within 60 s" % (total >> 20, i))
            t.eq(errors, {}, "every set while full is STORED")

            t.begin("recent items survive")
            acc = 0
            missing = []
            for key, idx, n in reversed(written):
                if acc > RECENT_MB << 20:
                    break
                acc += n
                if harness.get_item(c, key) != (idx, bytes([idx % 251]) * n):
                    missing.append(key.decode())
            t.eq(missing, [], "the last %d MB written read back byte-exact" % RECENT_MB)

            t.begin("any size can still be stored")
            refused = []
            for size in LADDER:
                val = bytes([size % 256]) * size
                r = c.request(b"set ladder:%d 1 0 %d\r\n" % (size, size) + val + b"\r\n")
                if r != b"STORED\r\n" or harness.get_item(c, b"ladder:%d" % size) != (1, val):
                    refused.append((size, r))
            detail = ""
            if refused:
                time.sleep(3)
                later = []
                for size, _ in refused:
                    r = c.request(b"set ladder:%d 1 0 %d\r\n" % (size, size)
                                  + bytes([size % 256]) * size + b"\r\n")
                    later.append((size, r))
                detail = "after 3 s more: %s" % harness.show(later, 600)
            t.check(not refused, "sets of %s bytes STORED at once in a full cache" % LADDER,
                    harness.show(refused, 600) + "\n" + detail)

            t.begin("counters and memory")
            st = harness.stats(c)
            t.check(int(st.get("evictions", b"0")) > 0, "evictions counted",
                    harness.show(st.get("evictions")))
            t.check(0 < int(st.get("bytes", b"0")) <= MEMORY_MB << 20,
                    "bytes within -m", harness.show(st.get("bytes")))
            rss = harness.rss_kb(srv.pid)
            t.check(rss < (MEMORY_MB + args.rss_slack_mb) * 1024,
                    "RSS %d kB < %d MB" % (rss, MEMORY_MB + args.rss_slack_mb))
        srv.check_alive(t)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=100)
