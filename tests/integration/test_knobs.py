"""Knobs act: `verbosity N` (memcached's command; cachetctl's `config set dataplane.verbosity`
goes through it) changes cachetd's log level while it runs, not only the number `stats
settings` shows. Observed in cachetd's log: the debug lines its workers write when they stop
(`ring closed`) and the info line `cachetd: stopped` appear only when the level was raised at
run time, and disappear again when it was lowered."""

import harness


def run_and_stop(t, binary, commands):
    """Starts cachetd with no -v, sends `commands` one by one, stops it; returns its log."""
    with harness.Server(binary) as srv:
        with srv.connect() as c:
            for cmd, reply in commands:
                t.eq(c.request(cmd), reply, cmd.decode().strip())
            settings = harness.stats(c, b"settings")
        harness.stop_pid(srv.proc)  # read the log before the server's directory goes
        return settings, srv.log_tail(100000)


def main():
    args = harness.parse_args(__doc__)
    t = harness.Checker("knobs", args.verbose)
    if harness.is_memcached(args.server):
        print("SKIP: reads cachetd's log lines")
        return 77
    t.begin("verbosity raised at run time")
    settings, log = run_and_stop(t, args.server, [(b"verbosity 2\r\n", b"OK\r\n")])
    t.eq(settings.get("verbosity"), b"2", "stats settings shows it")
    t.check("ring closed" in log, "debug lines logged after `verbosity 2`", log[-2000:])
    t.check("cachetd: stopped" in log, "info lines logged after `verbosity 2`", log[-2000:])
    t.begin("verbosity left at 0, and lowered again")
    _, quiet = run_and_stop(t, args.server, [])
    t.check("ring closed" not in quiet and "cachetd: stopped" not in quiet,
            "no debug or info lines without it", quiet[-2000:])
    _, lowered = run_and_stop(t, args.server, [(b"verbosity 2\r\n", b"OK\r\n"),
                                               (b"verbosity 0\r\n", b"OK\r\n")])
    t.check("ring closed" not in lowered and "cachetd: stopped" not in lowered,
            "none after `verbosity 0`", lowered[-2000:])
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=60)
