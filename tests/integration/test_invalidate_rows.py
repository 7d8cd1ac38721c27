"""cachet-invalidate against a real PostgreSQL and real cachetd servers: committed INSERT, UPDATE
and DELETE of mapped tables and a transaction with an emitted key message remove exactly the
mapped keys from every pool (two pools: two servers with ketama, and one server); a rolled-back
transaction removes none; what REPLICA IDENTITY DEFAULT cannot name is counted, not guessed;
the slot's position advances past what was delivered. Then cachet-control pointed at the
daemon shows it in `cachetctl invalidate` and `cachetctl status`.
"""

import json

import harness
import invalidate_common as ic
import pg


def more_args(p):
    p.add_argument("--control", help="cachet-control binary (for the cachetctl checks)")
    p.add_argument("--ctl", help="cachetctl binary")


def setup_tables(db):
    db.execute("CREATE TABLE users (id int PRIMARY KEY, email text, name text)")
    db.execute("ALTER TABLE users REPLICA IDENTITY FULL")
    db.execute("INSERT INTO users VALUES (1, 'a@x', 'A'), (2, 'b@x', 'B'), (3, 'c@x', 'C')")
    db.execute("CREATE TABLE orders (id int PRIMARY KEY, user_id int, total int)")
    db.execute("INSERT INTO orders VALUES (10, 1, 100), (11, 2, 200)")
    db.execute("CREATE TABLE other (id int PRIMARY KEY)")


def run_transactions(db):
    """The changes; returns the WAL position just before the last commit (a marker message)."""
    db.execute("INSERT INTO users VALUES (4, 'new@x', 'D')")
    db.execute("UPDATE users SET email = 'b2@x' WHERE id = 2")
    db.execute("DELETE FROM users WHERE id = 3")
    db.execute("UPDATE orders SET total = 5 WHERE id = 10")
    db.execute("DELETE FROM orders WHERE id = 11")
    c = db.connect(autocommit=False)
    with c.cursor() as cur:
        cur.execute("SELECT pg_logical_emit_message(true, 'cachet', 'msg:1 msg:2')")
        cur.execute("INSERT INTO other VALUES (1)")
        c.commit()
        # Rolled back: neither its row change nor its message may delete anything.
        cur.execute("UPDATE users SET name = 'x' WHERE id = 1")
        cur.execute("SELECT pg_logical_emit_message(true, 'cachet', 'rollback:1')")
        c.rollback()
        # A message with another prefix belongs to someone else.
        cur.execute("SELECT pg_logical_emit_message(true, 'someone-else', 'msg:3')")
        c.commit()
        cur.execute("SELECT pg_logical_emit_message(true, 'cachet', 'marker:1')")
        cur.execute("SELECT pg_current_wal_insert_lsn()::text")
        before_commit = cur.fetchone()[0]
        c.commit()
    c.close()
    return before_commit


DELETED = ["user:4", "email:new@x", "user:2", "email:b@x", "email:b2@x", "user:3", "email:c@x",
           "order:10", "user_orders:1", "order:11", "msg:1", "msg:2", "marker:1"]
KEPT = ["user:1", "user:5", "email:a@x", "msg:3", "rollback:1", "untouched:1",
        "user_orders:2"]  # user_orders:2: the deleted order's user_id is not in its identity


def check_cachetctl(t, args, daemon):
    import test_control_common as cc
    ctl = cc.Control(args, config='[invalidate]\nsocket = "%s"\n' % daemon.socket)
    try:
        rc, out, err = ctl.ctl("invalidate", timeout=20)
        t.eq(rc, 0, "cachetctl invalidate exits 0 (%s)" % err)
        for what in ("streaming", "cachet_it", "pool a", "pool b", "127.0.0.1:"):
            t.check(what in out, "cachetctl invalidate shows %r" % what, out)
        rc, out, err = ctl.ctl("--json", "invalidate", timeout=20)
        t.eq(json.loads(out)["invalidate"]["source"]["state"], "streaming", "--json invalidate")
        rc, out, err = ctl.ctl("status", timeout=20)
        t.check("invalidate" in out and "streaming" in out,
                "cachetctl status has the invalidate daemon's state", out)
    finally:
        ctl.stop()


def main():
    ic.skip_without_postgres()
    args = ic.parse_args(__doc__, more_args)
    t = harness.Checker("invalidate_rows", args.verbose)
    with pg.Postgres() as db, harness.Server(args.server) as a1, \
            harness.Server(args.server) as a2, harness.Server(args.server) as b1:
        setup_tables(db)
        body = (ic.pool_toml("a", [ic.server_spec(a1), ic.server_spec(a2)]) +
                ic.pool_toml("b", [ic.server_spec(b1)]) +
                ic.rule_toml("users", ["user:{id}", "email:{email}"]) +
                ic.rule_toml("public.orders", ["order:{id}", "user_orders:{user_id}"]))
        with ic.Invalidate(args.invalidate, db, body) as d:
            t.begin("start")
            st = d.status()
            t.eq(st["source"]["problems"], [], "no catalog problems")
            t.check(any("user_orders:{user_id}" in w and "REPLICA IDENTITY FULL" in w
                        for w in st["source"]["warnings"]),
                    "warns that user_id is outside orders' replica identity",
                    json.dumps(st["source"]["warnings"]))
            for s in (a1, a2, b1):
                ic.fill(s, DELETED + KEPT)

            t.begin("committed changes")
            before_commit = run_transactions(db)
            ic.wait_until(lambda: not ic.present(b1, ["marker:1"]), "marker:1 deleted in pool b")
            ic.wait_until(lambda: not (ic.present(a1, ["marker:1"]) and
                                       ic.present(a2, ["marker:1"])),
                          "marker:1 deleted in pool a")
            gone_b = set(DELETED + KEPT) - ic.present(b1, DELETED + KEPT)
            t.eq(sorted(gone_b), sorted(DELETED), "pool b lost exactly the mapped keys")
            on1, on2 = ic.present(a1, DELETED + KEPT), ic.present(a2, DELETED + KEPT)
            for k in DELETED:
                t.check((k in on1) != (k in on2),
                        "pool a: %s deleted from exactly one server (its ketama server)" % k)
            for k in KEPT:
                t.check(k in on1 and k in on2, "pool a: %s kept on both servers" % k)

            t.begin("counts")
            m = d.metrics()
            t.eq(m.get('cachet_invalidate_rows_total{table="public.users"}'), 3.0,
                 "3 users row changes")
            t.eq(m.get('cachet_invalidate_keys_unresolved_total{table="public.orders"}'), 2.0,
                 "orders: the old user_orders key of the UPDATE and the DELETE is unresolved")
            t.eq(m.get("cachet_invalidate_keys_rejected_total"), 0.0, "no key rejected")
            t.check(m.get("cachet_invalidate_commits_total", 0) >= 7, "commits counted")
            acks = sum(v for k, v in m.items() if k.startswith("cachet_invalidate_acks_total"))
            sent = sum(v for k, v in m.items()
                       if k.startswith("cachet_invalidate_deletes_sent_total"))
            t.eq(acks, sent, "every delete sent was answered")
            t.eq(sent, 2.0 * len(DELETED), "one delete per key per pool (merged within units)")

            t.begin("slot position")
            ic.wait_until(lambda: ic.lsn(ic.slot_position(db, "cachet_it")[0]) >
                          ic.lsn(before_commit), "the slot confirmed past the last commit")
            t.check(True, "confirmed_flush_lsn passed the last commit")

            if args.control and args.ctl:
                t.begin("cachetctl")
                check_cachetctl(t, args, d)
            t.begin("stop")
            t.eq(d.stop(), 0, "SIGTERM stops the daemon with status 0")
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 110)
