"""Every classic text command through pymemcache 3.5 (base Client, PooledClient, HashClient over
two server instances), plus raw-socket checks where pymemcache 3.5 has no API (gat/gats, 251-byte
keys, exact error lines). Values are checked byte for byte.

Recorded from stock memcached 1.6.18 (and asserted here):
  * decr below 0 gives 0; incr wraps at 2^64 (18446744073709551615 + 1 = 0).
  * a set whose value exceeds the item size limit (-I 1048576) replies
    "SERVER_ERROR object too large for cache", swallows the data block, and removes the old value
    of that key; the connection stays usable.
  * a 251-byte key: "CLIENT_ERROR bad command line format" (set: the data line that follows is
    then read as a command, giving "ERROR").
  * gat/gats: "gat <exptime> <key>*" -> VALUE lines like get/gets, and the new exptime applies.
"""

import threading
import time

import harness
from pymemcache.client.base import Client, PooledClient
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheServerError

MAX64 = 2**64 - 1
ITEM_MAX = 1024 * 1024


def client(port):
    return Client((harness.LOOPBACK, port), connect_timeout=5, timeout=5, default_noreply=False)


def section_stats_fresh(t, c, srv):
    t.begin("stats on a fresh server")
    s0 = c.stats()
    for name in [b"pid", b"uptime", b"time", b"version", b"curr_connections",
                 b"total_connections", b"cmd_get", b"cmd_set", b"cmd_flush", b"cmd_touch",
                 b"get_hits", b"get_misses", b"get_expired", b"get_flushed", b"delete_hits",
                 b"delete_misses", b"incr_hits", b"incr_misses", b"decr_hits", b"decr_misses",
                 b"cas_hits", b"cas_misses", b"cas_badval", b"touch_hits", b"touch_misses",
                 b"bytes_read", b"bytes_written", b"limit_maxbytes", b"threads", b"curr_items",
                 b"total_items", b"bytes", b"evictions"]:
        t.check(name in s0, "stats has %s" % name.decode())
    t.eq(s0.get(b"pid"), srv.pid, "stats pid is the server's pid")
    t.eq(s0.get(b"curr_items"), 0, "curr_items on a fresh server")
    t.eq(s0.get(b"limit_maxbytes"), 64 * 1024 * 1024, "limit_maxbytes for -m 64")
    t.eq(s0.get(b"threads"), 2, "threads for -t 2")
    for k in (b"a", b"b", b"c"):
        c.set(k, b"v", noreply=False)
    c.get(b"a")
    c.get(b"a")
    c.get(b"nope")
    c.delete(b"c")
    c.delete(b"c")
    s1 = c.stats()
    t.eq(s1.get(b"curr_items"), 2, "curr_items after 3 sets and 1 delete")
    t.eq(s1.get(b"total_items"), 3, "total_items after 3 sets")
    t.eq(s1.get(b"cmd_set", 0) - s0.get(b"cmd_set", 0), 3, "cmd_set delta")
    t.eq(s1.get(b"get_hits", 0) - s0.get(b"get_hits", 0), 2, "get_hits delta")
    t.eq(s1.get(b"get_misses", 0) - s0.get(b"get_misses", 0), 1, "get_misses delta")
    t.eq(s1.get(b"cmd_get", 0) - s0.get(b"cmd_get", 0), 3, "cmd_get delta")
    t.eq(s1.get(b"delete_hits", 0) - s0.get(b"delete_hits", 0), 1, "delete_hits delta")
    t.eq(s1.get(b"delete_misses", 0) - s0.get(b"delete_misses", 0), 1, "delete_misses delta")
    t.check(s1.get(b"bytes", 0) > 0, "bytes > 0 with items stored")
    t.check(s1.get(b"curr_connections", 0) >= 1, "curr_connections >= 1")

    t.begin("stats settings/items/slabs")
    st = c.stats("settings")
    t.eq(st.get(b"maxbytes"), 64 * 1024 * 1024, "stats settings maxbytes")
    t.eq(st.get(b"maxconns"), 1024, "stats settings maxconns")
    t.eq(st.get(b"tcpport"), srv.port, "stats settings tcpport")
    t.eq(st.get(b"udpport"), 0, "stats settings udpport (-U 0)")
    t.eq(st.get(b"item_size_max"), ITEM_MAX, "stats settings item_size_max")
    t.eq(st.get(b"num_threads"), 2, "stats settings num_threads")
    for name in (b"evictions", b"cas_enabled", b"growth_factor", b"chunk_size", b"verbosity"):
        t.check(name in st, "stats settings has %s" % name.decode())
    si = c.stats("items")
    numbers = {k: v for k, v in si.items() if k.startswith(b"items:") and k.endswith(b":number")}
    t.check(numbers, "stats items has items:<class>:number", harness.show(si))
    t.eq(sum(numbers.values()), 2, "sum of stats items number == curr_items")
    for k in numbers:
        cls = k.split(b":")[1]
        for f in (b"age", b"evicted", b"outofmemory"):
            t.check(b"items:" + cls + b":" + f in si, "stats items has items:%s:%s"
                    % (cls.decode(), f.decode()))
    ss = c.stats("slabs")
    t.check(b"active_slabs" in ss and b"total_malloced" in ss,
            "stats slabs has active_slabs and total_malloced", harness.show(ss))
    t.check(any(k.endswith(b":chunk_size") for k in ss), "stats slabs has <class>:chunk_size")
    t.check(any(k.endswith(b":used_chunks") for k in ss), "stats slabs has <class>:used_chunks")


def section_storage(t, c):
    t.begin("set/get/add/replace/append/prepend")
    t.eq(c.set(b"k1", b"hello", noreply=False), True, "set")
    t.eq(c.get(b"k1"), b"hello", "get after set")
    t.eq(c.get(b"missing"), None, "get missing")
    t.eq(c.set(b"k1", b"world", noreply=False), True, "set overwrite")
    t.eq(c.get(b"k1"), b"world", "get after overwrite")
    t.eq(c.add(b"k1", b"x", noreply=False), False, "add existing -> NOT_STORED")
    t.eq(c.get(b"k1"), b"world", "add existing left value alone")
    t.eq(c.add(b"k2", b"new", noreply=False), True, "add new -> STORED")
    t.eq(c.get(b"k2"), b"new", "get after add")
    t.eq(c.replace(b"k3", b"x", noreply=False), False, "replace missing -> NOT_STORED")
    t.eq(c.get(b"k3"), None, "replace missing stored nothing")
    t.eq(c.replace(b"k2", b"repl", noreply=False), True, "replace existing")
    t.eq(c.get(b"k2"), b"repl", "get after replace")
    t.eq(c.append(b"k2", b"_tail", noreply=False), True, "append")
    t.eq(c.prepend(b"k2", b"head_", noreply=False), True, "prepend")
    t.eq(c.get(b"k2"), b"head_repl_tail", "append+prepend result")
    t.eq(c.append(b"k3", b"x", noreply=False), False, "append missing -> NOT_STORED")
    t.eq(c.prepend(b"k3", b"x", noreply=False), False, "prepend missing -> NOT_STORED")
    t.eq(c.get(b"k3"), None, "append/prepend missing stored nothing")
    t.eq(c.set(b"empty", b"", noreply=False), True, "set empty value")
    t.eq(c.get(b"empty"), b"", "get empty value")

    t.begin("set_many/get_many/gets_many")
    kv = {b"m%d" % i: b"val-%d" % i for i in range(30)}
    t.eq(c.set_many(kv, noreply=False), [], "set_many returns no failed keys")
    got = c.get_many(list(kv) + [b"m-missing"])
    t.eq(got, kv, "get_many (30 keys + 1 missing)")
    gm = c.gets_many([b"m1", b"m2", b"m-missing"])
    t.eq(sorted(gm), [b"m1", b"m2"], "gets_many keys")
    t.check(all(isinstance(v, tuple) and v[1].isdigit() for v in gm.values()),
            "gets_many values carry cas", harness.show(gm))
    t.check(gm[b"m1"][1] != gm[b"m2"][1], "distinct items have distinct cas")
    c.delete_many([b"m%d" % i for i in range(10)], noreply=False)
    t.eq(len(c.get_many(list(kv))), 20, "delete_many removed 10 of 30")

    t.begin("gets/cas")
    c.set(b"ck", b"v1", noreply=False)
    v, cas = c.gets(b"ck")
    t.eq(v, b"v1", "gets value")
    t.eq(c.cas(b"ck", b"v2", cas, noreply=False), True, "cas with current unique -> STORED")
    t.eq(c.get(b"ck"), b"v2", "value after cas")
    t.eq(c.cas(b"ck", b"v3", cas, noreply=False), False, "cas with stale unique -> EXISTS")
    t.eq(c.get(b"ck"), b"v2", "EXISTS left value alone")
    v2, cas2 = c.gets(b"ck")
    t.check(cas2 != cas, "cas unique changes on update", "%r %r" % (cas, cas2))
    t.eq(c.cas(b"ck-missing", b"v", cas2, noreply=False), None, "cas on missing -> NOT_FOUND")
    t.eq(c.gets(b"ck-missing"), (None, None), "gets missing")
    c.touch(b"ck", 1000, noreply=False)
    _, cas3 = c.gets(b"ck")
    c.append(b"ck", b"x", noreply=False)
    _, cas4 = c.gets(b"ck")
    t.check(cas4 != cas3, "append changes cas unique")

    t.begin("delete")
    c.set(b"dk", b"x", noreply=False)
    t.eq(c.delete(b"dk", noreply=False), True, "delete existing -> DELETED")
    t.eq(c.get(b"dk"), None, "get after delete")
    t.eq(c.delete(b"dk", noreply=False), False, "delete missing -> NOT_FOUND")


def section_arith(t, c):
    t.begin("incr/decr")
    c.set(b"n", b"10", noreply=False)
    t.eq(c.incr(b"n", 5), 15, "incr 10+5")
    t.eq(c.decr(b"n", 3), 12, "decr 15-3")
    t.eq(c.get(b"n"), b"12", "value after incr/decr")
    t.eq(c.decr(b"n", 100), 0, "decr below 0 -> 0")
    t.eq(c.get(b"n").rstrip(b" "), b"0", "value after decr below 0 (in place, may be padded)")
    t.eq(c.incr(b"absent", 1), None, "incr missing -> NOT_FOUND")
    t.eq(c.decr(b"absent", 1), None, "decr missing -> NOT_FOUND")
    c.set(b"w", str(MAX64).encode(), noreply=False)
    t.eq(c.incr(b"w", 1), 0, "incr 2^64-1 + 1 wraps to 0")
    c.set(b"w", str(MAX64).encode(), noreply=False)
    t.eq(c.incr(b"w", 10), 9, "incr 2^64-1 + 10 wraps to 9")
    c.set(b"w", b"5", noreply=False)
    t.eq(c.incr(b"w", MAX64), 4, "incr 5 + (2^64-1) wraps to 4")
    c.set(b"s", b"100", noreply=False)
    t.eq(c.decr(b"s", 1), 99, "decr 100-1")
    with harness.Conn(c.server[1]) as raw:
        t.eq(raw.request(b"get s\r\n", b"END\r\n"), b"VALUE s 0 3\r\n99 \r\nEND\r\n",
             "decr 100->99 is written in place with a trailing space (memcached)")
        t.eq(raw.request(b"incr s 1\r\n"), b"100\r\n", "incr 99 -> 100 grows the value")
        t.eq(raw.request(b"set t 0 0 3\r\nabc\r\nincr t 1\r\n", b"value\r\n"),
             b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
             "incr on non-numeric value")
        t.eq(raw.request(b"incr t abc\r\n"), b"CLIENT_ERROR invalid numeric delta argument\r\n",
             "incr with non-numeric delta")
        t.eq(raw.request(b"incr t 18446744073709551616\r\n"),
             b"CLIENT_ERROR invalid numeric delta argument\r\n", "incr delta 2^64")
    c.set(b"ff", b"1", flags=0, noreply=False)
    t.eq(c.incr(b"ff", 18446744073709551614), MAX64, "incr to exactly 2^64-1")
    t.eq(c.get(b"ff"), str(MAX64).encode(), "value 2^64-1 stored as 20 digits")


def section_touch_gat_expiry(t, c, port):
    t.begin("touch/gat/gats/expiry")
    c.set(b"exp1", b"short", expire=1, noreply=False)
    c.set(b"exp3", b"longer", expire=3, noreply=False)
    # exptime 2 below, not 1: memcached's clock ticks once a second, so an exptime-1 item may
    # expire before the next command; exptime 2 items surely live until the touch/gat.
    c.set(b"touched", b"t", expire=2, noreply=False)
    t.eq(c.touch(b"touched", 100, noreply=False), True, "touch existing -> TOUCHED")
    t.eq(c.touch(b"touch-missing", 100, noreply=False), False, "touch missing -> NOT_FOUND")
    c.set(b"shortened", b"s", expire=100, noreply=False)
    t.eq(c.touch(b"shortened", 1, noreply=False), True, "touch to 1 s")
    c.set(b"gat1", b"g1", flags=5, expire=2, noreply=False)
    c.set(b"gats1", b"g2", flags=6, expire=100, noreply=False)
    c.set(b"neg", b"n", expire=-1, noreply=False)
    t.eq(c.get(b"neg"), None, "negative exptime: immediately expired")
    c.set(b"past", b"p", expire=1000000000, noreply=False)  # absolute time in 2001
    t.eq(c.get(b"past"), None, "absolute exptime in the past: immediately expired")
    with harness.Conn(port) as raw:
        t.eq(raw.request(b"gat 100 gat1 nope\r\n", b"END\r\n"), b"VALUE gat1 5 2\r\ng1\r\nEND\r\n",
             "gat returns value and flags")
        r = raw.request(b"gats 1 gats1\r\n", b"END\r\n")
        parts = r.split(b"\r\n")[0].split(b" ")
        t.check(len(parts) == 5 and parts[:4] == [b"VALUE", b"gats1", b"6", b"2"]
                and parts[4].isdigit() and r.endswith(b"\r\ng2\r\nEND\r\n"),
                "gats returns value, flags and cas", harness.show(r))
        _, cas = c.gets(b"gats1")
        t.eq(parts[4] if len(parts) == 5 else None, cas, "gats cas equals gets cas")
        t.eq(raw.request(b"gat 10 nope\r\n"), b"END\r\n", "gat miss")
        t.eq(raw.request(b"gat abc gat1\r\n"), b"CLIENT_ERROR invalid exptime argument\r\n",
             "gat with non-numeric exptime")
    t.eq(c.get(b"exp3"), b"longer", "exptime 3 item present at once")
    time.sleep(2.5)
    t.eq(c.get(b"exp1"), None, "exptime 1 item gone after 2.5 s")
    t.eq(c.get(b"touched"), b"t", "touched (to 100 s) item survives")
    t.eq(c.get(b"shortened"), None, "item touched to 1 s is gone")
    t.eq(c.get(b"gat1"), b"g1", "item extended by gat survives")
    t.eq(c.get(b"gats1"), None, "item shortened by gats is gone")


def section_flush(t, c):
    t.begin("flush_all")
    c.set(b"f1", b"x", noreply=False)
    t.eq(c.flush_all(noreply=False), True, "flush_all -> OK")
    t.eq(c.get(b"f1"), None, "flush_all removed the item")
    c.set(b"f2", b"after", noreply=False)
    t.eq(c.get(b"f2"), b"after", "item set right after flush_all is kept")
    # memcached's clock ticks once a second and a delay of N takes effect after N-1..N s, so a
    # delay of 3 leaves a safe window for the immediate check and 4.2 s is surely past it.
    t.eq(c.flush_all(delay=3, noreply=False), True, "flush_all 3 -> OK")
    t.eq(c.get(b"f2"), b"after", "delayed flush: item still there at once")
    c.set(b"f4", b"set-before-flush-time", noreply=False)
    time.sleep(4.2)
    t.eq(c.get(b"f4"), None, "delayed flush: item set between the command and the flush time gone")
    t.eq(c.get(b"f2"), None, "delayed flush: item gone after the delay")
    c.set(b"f3", b"later", noreply=False)
    t.eq(c.get(b"f3"), b"later", "item set after the delayed flush took effect is kept")


def section_noreply(t, c, port):
    t.begin("noreply")
    t.eq(c.set(b"nr", b"1", noreply=True), True, "set noreply")
    t.eq(c.add(b"nr", b"2", noreply=True), True, "add noreply (existing)")
    t.eq(c.replace(b"nr", b"3", noreply=True), True, "replace noreply")
    t.eq(c.append(b"nr", b"4", noreply=True), True, "append noreply")
    t.eq(c.prepend(b"nr", b"0", noreply=True), True, "prepend noreply")
    t.eq(c.get(b"nr"), b"034", "value after noreply storage commands")
    c.incr(b"nr", 6, noreply=True)
    c.decr(b"nr", 1, noreply=True)
    t.eq(c.get(b"nr"), b"39 ", "value after noreply incr/decr (40 -> 39 in place, padded)")
    _, cas = c.gets(b"nr")
    c.cas(b"nr", b"casd", cas, noreply=True)
    t.eq(c.get(b"nr"), b"casd", "cas noreply")
    c.touch(b"nr", 100, noreply=True)
    c.delete(b"nr", noreply=True)
    t.eq(c.get(b"nr"), None, "delete noreply")
    c.set(b"nr2", b"x", noreply=False)
    c.flush_all(noreply=True)
    t.eq(c.get(b"nr2"), None, "flush_all noreply")
    with harness.Conn(port) as raw:
        raw.send(b"set a 0 0 1 noreply\r\na\r\nadd a 0 0 1 noreply\r\nb\r\n"
                 b"replace zz 0 0 1 noreply\r\nc\r\nincr zz 1 noreply\r\ndelete zz noreply\r\n"
                 b"touch zz 1 noreply\r\nverbosity 0 noreply\r\nversion\r\n")
        r = raw.line()
        t.check(r.startswith(b"VERSION "), "noreply commands send nothing before the next reply",
                harness.show(r))
        t.eq(raw.read_all_quiet(0.2)[0], b"", "nothing after the version reply")


def section_sizes(t, c, port):
    t.begin("large values and key lengths")
    big = bytes((i * 7 + 3) % 256 for i in range(500 * 1024))
    t.eq(c.set(b"big", big, noreply=False), True, "set 500 KB")
    t.check(c.get(b"big") == big, "get 500 KB byte-exact")
    c.set(b"toolarge", b"old", noreply=False)
    try:
        c.set(b"toolarge", b"x" * (ITEM_MAX + 1), noreply=False)
        t.fail("set of 1 MB + 1 value raises SERVER_ERROR")
    except MemcacheServerError as e:
        t.check("object too large for cache" in str(e), "too large -> SERVER_ERROR object too "
                "large for cache", str(e))
    t.eq(c.get(b"toolarge"), None, "failed too-large set removed the old value")
    t.eq(c.get(b"big")[:16], big[:16], "connection still in sync after too-large set")
    with harness.Conn(port) as raw:
        r = raw.request(b"set tl 0 0 %d\r\n" % (ITEM_MAX + 1) + b"y" * (ITEM_MAX + 1)
                        + b"\r\nget tl\r\n", b"END\r\n", timeout=10)
        t.eq(r, b"SERVER_ERROR object too large for cache\r\nEND\r\n",
             "raw too-large set: error line, data swallowed")
        k250 = b"K" * 250
        t.eq(raw.request(b"set " + k250 + b" 3 0 2\r\nok\r\n"), b"STORED\r\n", "250-byte key set")
        t.eq(raw.request(b"get " + k250 + b"\r\n", b"END\r\n"),
             b"VALUE " + k250 + b" 3 2\r\nok\r\nEND\r\n", "250-byte key get")
        k251 = b"K" * 251
        t.eq(raw.request(b"get " + k251 + b"\r\n"), b"CLIENT_ERROR bad command line format\r\n",
             "251-byte key get")
        t.eq(raw.request(b"set " + k251 + b" 0 0 2\r\nok\r\n", b"ERROR\r\n"),
             b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
             "251-byte key set (data line then read as a command)")
    k250 = b"p" * 250
    t.eq(c.set(k250, b"v", noreply=False), True, "pymemcache 250-byte key set")
    t.eq(c.get(k250), b"v", "pymemcache 250-byte key get")

    t.begin("binary-safe values")
    allbytes = bytes(range(256))
    for name, val in ((b"bin1", allbytes), (b"bin2", allbytes * 37),
                      (b"bin3", b"\r\nEND\r\nVALUE x 0 1\r\n"), (b"bin4", b"\r\n"),
                      (b"bin5", b"\x00" * 1000), (b"bin6", b"\n"), (b"bin7", b"\r")):
        c.set(name, val, noreply=False)
        t.eq(c.get(name), val, "binary value %s round-trips" % name.decode())
    got = c.get_many([b"bin1", b"bin3", b"bin4"])
    t.eq(got, {b"bin1": allbytes, b"bin3": b"\r\nEND\r\nVALUE x 0 1\r\n", b"bin4": b"\r\n"},
         "binary values in one multiget")
    with harness.Conn(port) as raw:
        t.eq(raw.request(b"set flg 4294967295 0 1\r\nx\r\nget flg\r\n", b"END\r\n"),
             b"STORED\r\nVALUE flg 4294967295 1\r\nx\r\nEND\r\n", "flags 2^32-1 round-trip")


def section_version(t, c):
    t.begin("version")
    v = c.version()
    t.check(isinstance(v, bytes) and len(v) > 0 and b" " not in v, "version string", repr(v))


def section_pooled(t, port):
    t.begin("PooledClient from 4 threads")
    pc = PooledClient((harness.LOOPBACK, port), connect_timeout=5, timeout=5, max_pool_size=4,
                      default_noreply=False)
    errors = []

    def worker(n):
        try:
            for i in range(50):
                k = b"pool-%d-%d" % (n, i)
                pc.set(k, k * 3, noreply=False)
                if pc.get(k) != k * 3:
                    errors.append("mismatch on %r" % k)
            pc.incr(b"pool-counter", 1)
        except Exception as e:  # noqa: BLE001 - reported as a failure below
            errors.append(repr(e))

    pc.set(b"pool-counter", b"0", noreply=False)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    t.check(not any(th.is_alive() for th in threads), "pooled workers finished in 30 s")
    t.eq(errors, [], "pooled workers saw no errors")
    t.eq(pc.get(b"pool-counter"), b"4", "incr from 4 pooled threads")
    pc.close()


def section_hash(t, srv_a, srv_b):
    t.begin("HashClient over two servers")
    hc = HashClient([(harness.LOOPBACK, srv_a.port), (harness.LOOPBACK, srv_b.port)],
                    connect_timeout=5, timeout=5, default_noreply=False, retry_attempts=1)
    kv = {b"h%d" % i: b"hv%d" % i for i in range(60)}
    t.eq(hc.set_many(kv, noreply=False), [], "HashClient set_many")
    t.eq(hc.get_many(list(kv)), kv, "HashClient get_many")
    ca, cb = client(srv_a.port), client(srv_b.port)
    na = len(ca.get_many(list(kv)))
    nb = len(cb.get_many(list(kv)))
    t.eq(na + nb, 60, "every key lives on exactly one server")
    t.check(na > 0 and nb > 0, "keys spread over both servers", "%d / %d" % (na, nb))
    t.eq(hc.incr(b"h-count", 1), None, "HashClient incr missing")
    hc.set(b"h-count", b"41", noreply=False)
    t.eq(hc.incr(b"h-count", 1), 42, "HashClient incr")
    t.eq(hc.delete(b"h1", noreply=False), True, "HashClient delete")
    t.eq(hc.get(b"h1"), None, "HashClient get after delete")
    ca.close()
    cb.close()
    hc.quit() if hasattr(hc, "quit") else None


def main():
    args = harness.parse_args(__doc__)
    t = harness.Checker("pymemcache_commands", args.verbose)
    with harness.Server(args.server, item_max=ITEM_MAX) as srv:
        # each section gets its own client, so a failure cannot desynchronise the next one
        def with_client(fn, *extra):
            c = client(srv.port)
            try:
                fn(t, c, *extra)
            finally:
                c.close()

        def stats_fresh():
            with_client(section_stats_fresh, srv)

        def storage():
            with_client(section_storage)

        def arith():
            with_client(section_arith)

        def noreply():
            with_client(section_noreply, srv.port)

        def sizes():
            with_client(section_sizes, srv.port)

        def version():
            with_client(section_version)

        def touch_gat_expiry():
            with_client(section_touch_gat_expiry, srv.port)

        def flush():
            with_client(section_flush)

        for fn in (stats_fresh, storage, arith, noreply, sizes, version, touch_gat_expiry, flush):
            t.run_section(fn)
        t.run_section(section_pooled, t, srv.port)
        with harness.Server(args.server, item_max=ITEM_MAX, name="second") as srv_b:
            t.run_section(section_hash, t, srv, srv_b)
            srv_b.check_alive(t)
        srv.check_alive(t)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=100)
