"""cachet-invalidate deletes a key on the server the clients read it from: three cachetd behind
nutcracker (twemproxy) with ketama, once with `hash: md5` (libmemcached's ketama) and once with
`hash: fnv1a_64` (twemproxy's default), servers named as in the proxy's config. Keys written
through each proxy are invalidated by a key message; afterwards the proxy reads a miss for
every one, and the daemon's acknowledgements say each delete found its key exactly once (the
other pool's delete of the same key finds nothing). Then a pool that is a router: deletes sent
to nutcracker itself, which routes them.
"""

import os
import shutil
import tempfile

from pymemcache.client.base import Client

import harness
import invalidate_common as ic
import pg
from test_nutcracker import start_proxy

N = 150


def emit_keys(db, keys):
    c = db.connect(autocommit=False)
    with c.cursor() as cur:
        for i in range(0, len(keys), 50):
            cur.execute("SELECT pg_logical_emit_message(true, 'cachet', %s)",
                        (" ".join(keys[i:i + 50]),))
        c.commit()
    c.close()


def through(port, keys, value=None):
    """Sets keys through the proxy (value given) or returns those it still reads."""
    c = Client((harness.LOOPBACK, port), connect_timeout=5, timeout=5, default_noreply=False)
    try:
        if value is not None:
            for k in keys:
                c.set(k, value)
            return None
        found = set()
        for i in range(0, len(keys), 50):
            found |= {k.decode() if isinstance(k, bytes) else k
                      for k in c.get_many(keys[i:i + 50])}
        return found
    finally:
        c.close()


def acks(d, result):
    return sum(v for k, v in d.metrics().items()
               if k.startswith("cachet_invalidate_acks_total") and 'result="%s"' % result in k)


def main():
    ic.skip_without_postgres()
    args = ic.parse_args(__doc__)
    t = harness.Checker("invalidate_ketama", args.verbose)
    work = tempfile.mkdtemp(prefix="cachet-it-inv-ketama-")
    backends = [harness.Server(args.server, name="backend%d" % i) for i in range(3)]
    try:
        with pg.Postgres() as db:
            proxies = {}
            for h in ("md5", "fnv1a_64"):
                os.makedirs(os.path.join(work, h))
                proxies[h] = start_proxy(backends, os.path.join(work, h), hash=h)
            (md5_proxy, md5_port), (fnv_proxy, fnv_port) = proxies["md5"], proxies["fnv1a_64"]
            specs = [ic.server_spec(b, "backend%d" % i) for i, b in enumerate(backends)]
            body = (ic.pool_toml("md5", specs, hash="md5") +
                    ic.pool_toml("fnv", specs, hash="fnv1a_64"))
            with ic.Invalidate(args.invalidate, db, body) as d:
                t.begin("ketama pools: md5 and fnv1a_64")
                k_md5 = ["ket:md5:%d" % i for i in range(N)]
                k_fnv = ["ket:fnv:%d" % i for i in range(N)]
                keep = ["ket:keep:%d" % i for i in range(20)]
                through(md5_port, k_md5 + keep, b"v")
                through(fnv_port, k_fnv, b"v")
                spread = [len(ic.present(b, k_md5)) for b in backends]
                t.check(all(n > 0 for n in spread) and sum(spread) == N,
                        "the md5 proxy spread the keys over all three backends", str(spread))
                emit_keys(db, k_md5 + k_fnv)
                ic.wait_until(lambda: acks(d, "deleted") + acks(d, "not_found") >= 4 * N,
                              "every delete answered")
                t.eq(through(md5_port, k_md5), set(), "the md5 proxy reads every key as deleted")
                t.eq(through(fnv_port, k_fnv), set(), "the fnv1a_64 proxy reads every key as "
                     "deleted")
                t.eq(len(through(md5_port, keep)), len(keep), "keys not named are kept")
                t.eq(acks(d, "deleted"), 2.0 * N, "each key's delete found it on its server once")
                t.eq(acks(d, "not_found"), 2.0 * N, "the other pool's delete found nothing")

            t.begin("router pool")
            with ic.Invalidate(args.invalidate, db, ic.pool_toml(
                "twemproxy", router="%s:%d" % (harness.LOOPBACK, md5_port))) as d:
                k_r = ["ket:router:%d" % i for i in range(N)]
                through(md5_port, k_r, b"v")
                emit_keys(db, k_r)
                ic.wait_until(lambda: acks(d, "deleted") >= N, "the router acknowledged deletes")
                t.eq(through(md5_port, k_r), set(), "deleted through the router")
                t.eq(acks(d, "not_found"), 0.0, "the router found every key")
                m = d.metrics()
                packets = sum(v for k, v in m.items()
                              if k.startswith("cachet_invalidate_packets_total"))
                t.check(packets < N, "deletes shared packets (%d packets for %d deletes)"
                        % (packets, N))
            harness.stop_pid(md5_proxy)
            harness.stop_pid(fnv_proxy)
    finally:
        for b in backends:
            b.stop()
        shutil.rmtree(work, ignore_errors=True)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 110)
