"""A server that was down while rows changed comes back holding its old values (cachetd keeps
items in a named arena across restarts) and must not keep serving them: cachet-invalidate
spools the deletes it could not deliver and replays them when the server answers again. The
other pool keeps getting its deletes meanwhile, and the slot keeps advancing (spooled deletes
are durable). After the replay the server holds none of the invalidated keys and all the
others.
"""

import os

import harness
import invalidate_common as ic
import pg

N_CHANGED = 300
N_KEPT = 200


def main():
    ic.skip_without_postgres()
    args = ic.parse_args(__doc__)
    t = harness.Checker("invalidate_replay", args.verbose)
    arena = "cachet-it-replay-%d" % os.getpid()
    changed = ["item:%d" % i for i in range(N_CHANGED)]
    kept = ["item:%d" % i for i in range(N_CHANGED, N_CHANGED + N_KEPT)]
    port = harness.free_port()
    shm = ["--shm", arena]
    x = harness.Server(args.server, port=port, extra=shm, name="cachetd-x")
    try:
        with pg.Postgres() as db, harness.Server(args.server) as y:
            db.execute("CREATE TABLE items (id int PRIMARY KEY, v int)")
            db.execute("INSERT INTO items SELECT g, 0 FROM generate_series(0, %d) g"
                       % (N_CHANGED + N_KEPT - 1))
            body = (ic.pool_toml("x", [ic.server_spec(x)]) + ic.pool_toml("y", [ic.server_spec(y)])
                    + ic.rule_toml("items", ["item:{id}"]))
            addr = "%s:%d" % (harness.LOOPBACK, port)
            with ic.Invalidate(args.invalidate, db, body) as d:
                for s in (x, y):
                    ic.fill(s, changed + kept)
                ic.wait_until(lambda: d.server("x", addr)["state"] == "up", "pool x up")

                t.begin("server x down while rows change")
                x.stop()  # the arena stays in /dev/shm (or hugetlbfs)
                c = db.connect()
                with c.cursor() as cur:
                    for i in range(N_CHANGED):
                        cur.execute("UPDATE items SET v = v + 1 WHERE id = %s", (i,))
                    cur.execute("SELECT pg_current_wal_insert_lsn()::text")
                    after = cur.fetchone()[0]
                c.close()
                ic.wait_until(lambda: not ic.present(y, changed), "pool y got its deletes")
                ic.wait_until(lambda: d.server("x", addr)["spool_deletes"] == N_CHANGED,
                              "x's %d deletes in its spool" % N_CHANGED)
                srv = d.server("x", addr)
                t.eq(srv["spool_deletes"], N_CHANGED, "every delete for x is spooled")
                t.check(srv["state"] != "up" and srv["last_error"],
                        "x is down with a reason (%s)" % srv["last_error"])
                t.eq(d.metric("cachet_invalidate_spool_deletes", pool="x", server=addr),
                     float(N_CHANGED), "spool metric")
                ic.wait_until(lambda: ic.lsn(ic.slot_position(db, "cachet_it")[0]) >=
                              ic.lsn(after), "the slot confirmed the spooled transactions")
                t.check(True, "the slot advanced while x was down")
                t.eq(sorted(ic.present(y, kept)), sorted(kept), "pool y kept the other keys")

                t.begin("x back with its arena: the spool is replayed")
                x = harness.Server(args.server, port=port, extra=shm, name="cachetd-x")
                ic.wait_until(lambda: d.server("x", addr)["spool_deletes"] == 0,
                              "x's spool replayed")
                srv = d.server("x", addr)
                t.eq(srv["state"], "up", "x is up")
                t.eq(sorted(ic.present(x, changed)), [],
                     "x holds none of the %d invalidated keys" % N_CHANGED)
                t.eq(sorted(ic.present(x, kept)), sorted(kept),
                     "x kept its other %d values (the arena survived)" % N_KEPT)
                t.eq(d.metric("cachet_invalidate_replayed_deletes_total", pool="x", server=addr),
                     float(N_CHANGED), "replayed deletes counted")
                t.check(srv["deleted"] >= N_CHANGED,
                        "the replayed deletes found the old values (%d DELETED)" % srv["deleted"])

                t.begin("after the replay, deletes go straight to x")
                db.execute("UPDATE items SET v = v + 1 WHERE id = %s", (N_CHANGED,))
                ic.wait_until(lambda: not ic.present(x, [kept[0]]), "a new delete reaches x")
                t.eq(d.server("x", addr)["spool_deletes"], 0, "nothing spooled")
    finally:
        x.stop()
        for path in ("/dev/shm/" + arena, "/dev/hugepages/" + arena):
            if os.path.exists(path):
                os.unlink(path)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 110)
