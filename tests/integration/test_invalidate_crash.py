"""At least once across a crash: cachet-invalidate is killed with SIGKILL in the middle of a
stream of committed updates (each its own transaction), commits go on while it is dead, and a
new daemon on the same slot and spool resumes from the slot. Every key that was committed is
deleted from both pools (none lost), and the daemon reports how many deletes it repeated for
transactions its predecessor had delivered but not yet confirmed.
"""

import threading

import harness
import invalidate_common as ic
import pg

N = 1500


def writer(db, start, stop, done, pause_at, resume):
    """Commits updates of ids [start, stop), one per transaction; at pause_at it waits for
    `resume` (the daemon is killed meanwhile, so commits are still coming when it dies,
    whatever the machine's speed), then commits the rest while the daemon is dead."""
    c = db.connect()
    with c.cursor() as cur:
        for i in range(start, stop):
            if i == pause_at:
                resume.wait(ic.WAIT_S)
            cur.execute("UPDATE items SET v = v + 1 WHERE id = %s", (i,))
            done[0] = i + 1
    c.close()


def deletes_acked(d):
    return sum(v for k, v in d.metrics().items() if k.startswith("cachet_invalidate_acks_total"))


def main():
    ic.skip_without_postgres()
    args = ic.parse_args(__doc__)
    t = harness.Checker("invalidate_crash", args.verbose)
    keys = ["item:%d" % i for i in range(N)]
    with pg.Postgres() as db, harness.Server(args.server) as a, harness.Server(args.server) as b:
        db.execute("CREATE TABLE items (id int PRIMARY KEY, v int)")
        db.execute("INSERT INTO items SELECT g, 0 FROM generate_series(0, %d) g" % (N - 1))
        body = (ic.pool_toml("a", [ic.server_spec(a)]) + ic.pool_toml("b", [ic.server_spec(b)]) +
                ic.rule_toml("items", ["item:{id}"]))
        with ic.Invalidate(args.invalidate, db, body) as d:
            for s in (a, b):
                ic.fill(s, keys)
            done = [0]
            resume = threading.Event()
            w = threading.Thread(target=writer, args=(db, 0, N, done, N // 2, resume))
            w.start()
            t.begin("kill -9 mid-stream")
            ic.wait_until(lambda: deletes_acked(d) >= N // 4, "a quarter of the deletes acked")
            d.kill9()
            at_kill = done[0]
            resume.set()
            t.check(at_kill < N, "killed while commits were still coming (%d of %d)" % (at_kill, N))
            ic.wait_until(lambda: done[0] >= min(N, at_kill + 200),
                          "commits while the daemon is dead")
            t.begin("restart")
            d.start()
            w.join(timeout=ic.WAIT_S)
            t.check(not w.is_alive(), "all %d transactions committed" % N)
            for s, name in ((a, "a"), (b, "b")):
                ic.wait_until(lambda: not ic.present(s, keys),
                              "every committed key deleted from pool %s" % name)
                t.eq(sorted(ic.present(s, keys)), [],
                     "pool %s holds none of the %d committed keys" % (name, N))
            repeated = d.metric("cachet_invalidate_redelivered_deletes_total")
            t.check(repeated is not None, "repeated deletes are reported (%s)" % repeated)
            t.eq(d.status()["pipeline"]["redelivered_deletes"], repeated,
                 "status shows the same count")
            print("deletes repeated after the restart: %d" % repeated, flush=True)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 110)
