"""Bad input to cachet-invalidate: each gets a clear error naming the thing, the daemon keeps
serving what it can, and nothing undelivered is confirmed.
- configs: a malformed key template or server is refused at start (exit 2, key and line);
  --print-default-config reads back (--check);
- rules naming a table or a column the database does not have: reported (log, status,
  metric) while the good rule and key messages keep working;
- keys over 250 bytes, keys with control characters, a message that is not keys: counted and
  logged, the valid keys of the same transaction still deleted;
- an unreachable database: the daemon waits and retries, says why, answers status;
- a slot another consumer holds: the daemon names the holder, and streams once it is free.
"""

import contextlib
import os
import subprocess
import tempfile

import harness
import invalidate_common as ic
import pg


def run_config(binary, text, *flags):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    try:
        return harness.run_tool([binary, "--config", f.name] + list(flags), 20)
    finally:
        os.unlink(f.name)


def check_configs(t, binary):
    t.begin("config refused at start")
    rc, out, err = run_config(binary, '[[rule]]\ntable = "users"\nkeys = ["user:{id"]\n')
    t.eq(rc, 2, "a malformed template exits 2")
    t.check("user:{id" in err and ":1" in err and "not closed" in err,
            "the error names the template and the line", err)
    rc, out, err = run_config(binary, '[[pool]]\nname = "p"\nservers = ["10.0.0.1:99999"]\n')
    t.eq(rc, 2, "a bad server exits 2")
    t.check("10.0.0.1:99999" in err, "the error names the server", err)
    rc, out, err = harness.run_tool([binary, "--print-default-config"], 20)
    t.eq(rc, 0, "--print-default-config")
    rc, out2, err = run_config(binary, out, "--check")
    t.eq(rc, 0, "the default config passes --check (%s)" % err)


def check_unreachable(t, args, s):
    t.begin("an unreachable database")
    dead_port = harness.free_port()
    with ic.Invalidate(args.invalidate, "host=127.0.0.1 port=%d user=postgres dbname=x "
                       "connect_timeout=2" % dead_port,
                       ic.pool_toml("p", [ic.server_spec(s)]), wait_streaming=False) as d:
        st = ic.wait_until(lambda: (lambda x: x if x["source"]["state"] == "waiting"
                                    else None)(d.status()), "the source waiting to retry")
        t.check("cannot connect" in st["source"]["error"] and str(dead_port) in
                st["source"]["error"], "status says it cannot connect, and where",
                st["source"]["error"])
        t.eq(d.metric("cachet_invalidate_source_up"), 0.0, "source_up is 0")
        t.check(d.proc.poll() is None, "the daemon keeps running")
        ic.wait_until(lambda: d.metric("cachet_invalidate_source_errors_total") >= 2,
                      "it retries")
        t.check(True, "it retries")


def check_column(t, args, db, s):
    t.begin("a column that does not exist")
    with ic.Invalidate(args.invalidate, db, ic.pool_toml("p", [ic.server_spec(s)]) +
                       ic.rule_toml("users", ["user:{id}", "mail:{mail}"]),
                       slot="other_slot") as d:
        problems = " | ".join(d.status()["source"]["problems"])
        t.check("'mail'" in problems and "columns: id, email" in problems,
                "the unknown column is named with the table's columns", problems)


@contextlib.contextmanager
def held_slot(db):
    """Slot `held` (pgoutput), streamed by pg_recvlogical: another consumer."""
    db.execute("SELECT pg_create_logical_replication_slot('held', 'pgoutput')")
    db.execute("CREATE PUBLICATION held_pub")
    holder = harness.spawn([os.path.join(pg.bin_dir(), "pg_recvlogical"), "-d",
                            db.conninfo(), "-S", "held", "--start", "-f", "/dev/null",
                            "-o", "proto_version=1", "-o", "publication_names=held_pub"],
                           os.path.join(tempfile.gettempdir(),
                                        "cachet-it-recvlogical-%d.log" % os.getpid()))
    try:
        ic.wait_until(lambda: ic.slot_position(db, "held")[1], "pg_recvlogical holds the slot")
        yield holder
    finally:
        if holder.poll() is None:
            harness.stop_pid(holder)


def check_slot_held(t, db, d, holder):
    t.begin("a slot another consumer holds")
    st = ic.wait_until(lambda: (lambda x: x if "in use" in x["source"]["error"]
                                else None)(d.status()), "the slot reported as held")
    walsender = db.execute("SELECT active_pid FROM pg_replication_slots WHERE "
                           "slot_name = 'held'")[0][0]
    t.check("held" in st["source"]["error"] and str(walsender) in st["source"]["error"],
            "the error names the slot and the holder's walsender pid", st["source"]["error"])
    harness.stop_pid(holder)
    d.wait_streaming()
    t.check(True, "streams once the slot is free")


def check_missing_tables(t, d):
    t.begin("rules naming tables that do not exist")
    problems = " | ".join(d.status()["source"]["problems"])
    t.check("nosuch" in problems and "does not exist" in problems,
            "a missing table is named", problems)
    t.check("users_typo" in problems, "the other missing table too", problems)
    t.eq(d.metric("cachet_invalidate_config_problems"), 2.0, "config_problems metric")


def check_bad_keys(t, db, d, s):
    t.begin("bad keys in a transaction")
    ic.fill(s, ["user:1", "ok:1", "ok:2"])
    c = db.connect(autocommit=False)
    with c.cursor() as cur:
        cur.execute("UPDATE users SET email = 'b@x' WHERE id = 1")
        cur.execute("SELECT pg_logical_emit_message(true, 'cachet', %s)",
                    ("ok:1 " + "k" * 251 + " bad\x01key ok:2",))
        cur.execute("SELECT pg_logical_emit_message(true, 'cachet', %s)", ("\x01\x02\x03",))
        cur.execute("SELECT pg_logical_emit_message(true, 'cachet', %s)", ("   ",))
        c.commit()
    c.close()
    ic.wait_until(lambda: not ic.present(s, ["user:1", "ok:1", "ok:2"]), "the valid keys deleted")
    t.check(True, "the rule's key and the valid message keys are deleted")
    t.eq(d.metric("cachet_invalidate_keys_rejected_total"), 3.0,
         "three keys rejected (too long, two with control characters)")
    t.eq(d.metric("cachet_invalidate_messages_rejected_total"), 2.0,
         "two messages with no key at all")
    t.check(ic.log_has(d, r"longer than 250 bytes") and
            ic.log_has(d, r"bad\\x01key.*control character") and
            ic.log_has(d, r"holds no valid key"), "the log names each problem")
    t.check(d.proc.poll() is None, "the daemon keeps running")


def main():
    ic.skip_without_postgres()
    args = ic.parse_args(__doc__)
    t = harness.Checker("invalidate_bad_input", args.verbose)
    check_configs(t, args.invalidate)
    with pg.Postgres() as db, harness.Server(args.server) as s:
        db.execute("CREATE TABLE users (id int PRIMARY KEY, email text)")
        db.execute("INSERT INTO users VALUES (1, 'a@x')")

        check_unreachable(t, args, s)
        check_column(t, args, db, s)
        with held_slot(db) as holder, ic.Invalidate(
                args.invalidate, db, ic.pool_toml("p", [ic.server_spec(s)]) +
                ic.rule_toml("users", ["user:{id}"]) + ic.rule_toml("nosuch", ["n:{id}"]) +
                ic.rule_toml("public.users_typo", ["u:{id}"]),
                slot="held", wait_streaming=False) as d:
            check_slot_held(t, db, d, holder)
            check_missing_tables(t, d)
            check_bad_keys(t, db, d, s)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 110)
