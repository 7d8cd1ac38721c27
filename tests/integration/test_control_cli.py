"""cachetctl end to end against a real cachet-control and cachetd: every subcommand, run-time
tunables that visibly take effect (in cachetd's own `stats settings` over TCP), the metrics
endpoint, and a clear error with a documented exit status for bad input to each command.

    /usr/bin/python3 tests/integration/test_control_cli.py build/dataplane/daemon/cachetd \
        --control build/control/cachet-control --ctl build/control/cachetctl
"""

import json
import os
import stat
import urllib.request

import harness
import test_control_common as tc

OK, FAILED, USAGE, NO_CONTROL = 0, 1, 2, 3


def expect(t, res, rc, what, needle=None):
    got_rc, out, err = res
    t.check(got_rc == rc, "%s: exit status %d" % (what, rc),
            "got %s\nstdout %s\nstderr %s" % (got_rc, harness.show(out), harness.show(err)))
    if needle is not None:
        t.check(needle in (out + err), "%s: says %r" % (what, needle),
                "stdout %s\nstderr %s" % (harness.show(out), harness.show(err)))
    return out


def settings_over_tcp(c):
    with harness.Conn(c.port) as conn:
        return harness.stats(conn, b"settings")


def section_status(t, c):
    t.begin("status")
    out = expect(t, c.ctl("status"), OK, "status", "running")
    t.check("cachetd" in out and str(c.port) in out, "status shows cachetd and its port", out)
    s = c.status()
    t.eq(s["dataplane"]["arena"], c.arena, "status: arena from the config")
    t.check(s["dataplane"]["pid"] > 0, "status: cachetd pid")
    mode = stat.S_IMODE(os.stat(c.socket).st_mode)
    t.eq(oct(mode), oct(0o600), "control socket mode")


def section_stats(t, c):
    t.begin("stats")
    with harness.Conn(c.port) as conn:
        harness.set_item(conn, "k1", b"hello")
        harness.get_item(conn, "k1")
    out = expect(t, c.ctl("stats"), OK, "stats")
    t.check("curr_items" in out and "get_hits" in out, "stats lists memcached names", out[:300])
    rc, out, _ = c.ctl("--json", "stats")
    st = dict(json.loads(out)["stats"])
    t.check(int(st["curr_items"]) >= 1 and int(st["get_hits"]) >= 1, "stats counts the set/get")
    for g, needle in (("settings", "maxbytes"), ("items", "items:"), ("slabs", "chunk_size")):
        expect(t, c.ctl("stats", g), OK, "stats " + g, needle)
    expect(t, c.ctl("stats", "bogus"), USAGE, "stats bogus", "bogus")
    out = expect(t, c.ctl("slabs"), OK, "slabs", "CHUNK")
    t.check("\n    1 " in out or "\n    2 " in out or "all" in out, "slabs has class rows", out)


def section_config(t, c):
    t.begin("config")
    out = expect(t, c.ctl("config", "get"), OK, "config get", "dataplane.verbosity")
    t.check("supervisor.backoff_max_ms" in out and "metrics.port" in out,
            "config get lists control tunables", out)
    t.check("dataplane.port" not in out, "config get lists only run-time tunables", out)
    for key in ("leases", "lease_window", "stale_window", "holdoff_max", "transient_ttl"):
        t.check("dataplane." + key in out, "config get lists dataplane." + key, out)

    # verbosity: changed live, visible in cachetd's own stats settings
    expect(t, c.ctl("config", "set", "dataplane.verbosity", "2"), OK, "set verbosity", "was 0")
    t.eq(settings_over_tcp(c).get("verbosity"), b"2", "cachetd reports the new verbosity")
    expect(t, c.ctl("config", "get", "dataplane.verbosity"), OK, "get verbosity", " 2 ")
    expect(t, c.ctl("config", "set", "dataplane.verbosity", "0"), OK, "set verbosity back")
    t.eq(settings_over_tcp(c).get("verbosity"), b"0", "verbosity back to 0")
    section_lease_tunables(t, c)
    # control's own tunables
    expect(t, c.ctl("config", "set", "supervisor.backoff_max_ms", "5000"), OK, "set backoff")
    expect(t, c.ctl("config", "get", "supervisor.backoff_max_ms"), OK, "get backoff", "5000")
    expect(t, c.ctl("config", "get", "dataplane.port"), OK, "get start-only key", "start only")

    # bad input: each names the key and exits 2
    expect(t, c.ctl("config", "get", "nosuch.key"), USAGE, "get unknown key", "nosuch.key")
    expect(t, c.ctl("config", "set", "nosuch.key", "1"), USAGE, "set unknown key", "nosuch.key")
    expect(t, c.ctl("config", "set", "dataplane.verbosity", "9"), USAGE, "verbosity 9",
           "dataplane.verbosity")
    expect(t, c.ctl("config", "set", "dataplane.verbosity", "x"), USAGE, "verbosity x", "'x'")
    expect(t, c.ctl("config", "set", "supervisor.backoff_max_ms", "-1"), USAGE,
           "negative backoff", "supervisor.backoff_max_ms")
    expect(t, c.ctl("config", "set", "supervisor.backoff_max_ms", "abc"), USAGE,
           "backoff abc", "not an integer")
    expect(t, c.ctl("config", "set", "control.log_level", "loud"), USAGE, "log level loud",
           "control.log_level")
    expect(t, c.ctl("config", "set", "dataplane.port", "1"), USAGE, "set start-only key",
           "start only")
    expect(t, c.ctl("config", "set", "dataplane.verbosity"), USAGE, "set without value")
    expect(t, c.ctl("config"), USAGE, "config without get/set")
    t.eq(settings_over_tcp(c).get("verbosity"), b"0", "bad values changed nothing")


def lease_get(conn, key):
    """A lease-get's first line and its data (the reply ends in END)."""
    raw = conn.request(b"lease-get " + key.encode() + b"\r\n", term=b"END\r\n")
    head, _, rest = raw.partition(b"\r\n")
    return head, rest[: -len(b"\r\nEND\r\n")] if rest != b"END\r\n" else b""


def section_lease_tunables(t, c):
    """The lease tunables change what cachetd does, not only what it reports."""
    with harness.Conn(c.port) as conn:
        # stale_window: a deleted value is handed out as stale through lease-get, or not.
        harness.set_item(conn, "st1", b"old")
        conn.request(b"delete st1\r\n")
        head, data = lease_get(conn, "st1")
        t.check(head.startswith(b"LVALUE st1 ") and data == b"old",
                "default stale window: lease-get after delete carries the stale value",
                (head, data))
        expect(t, c.ctl("config", "set", "dataplane.stale_window", "0"), OK, "stale_window 0")
        t.eq(settings_over_tcp(c).get("stale_window"), b"0", "cachetd reports stale_window 0")
        harness.set_item(conn, "st2", b"old")
        conn.request(b"delete st2\r\n")
        head, data = lease_get(conn, "st2")
        t.check(head.startswith(b"LVALUE st2 ") and data == b"",
                "stale_window 0: nothing kept after delete", (head, data))
        expect(t, c.ctl("config", "set", "dataplane.stale_window", "10"), OK, "stale_window back")
        # leases: off makes lease-get a get (a bare END on a miss, never LVALUE).
        expect(t, c.ctl("config", "set", "dataplane.leases", "0"), OK, "leases 0")
        t.eq(conn.request(b"lease-get nolease\r\n"), b"END\r\n", "leases 0: lease-get is a get")
        expect(t, c.ctl("config", "set", "dataplane.leases", "1"), OK, "leases 1")
        head, _ = lease_get(conn, "nolease")
        t.check(head.startswith(b"LVALUE nolease ") and not head.startswith(b"LVALUE nolease 1 "),
                "leases 1: a token again", head)
        # holdoff_max: a hold-off above it is clamped to it (0: hold-offs off).
        expect(t, c.ctl("config", "set", "dataplane.holdoff_max", "0"), OK, "holdoff_max 0")
        conn.request(b"delete ho 30\r\n")
        t.eq(conn.request(b"add ho 0 0 1\r\nx\r\n"), b"STORED\r\n",
             "holdoff_max 0: delete k 30 holds nothing off")
        expect(t, c.ctl("config", "set", "dataplane.holdoff_max", "60"), OK, "holdoff_max 60")
        conn.request(b"delete ho 30\r\n")
        t.eq(conn.request(b"add ho 0 0 1\r\nx\r\n"), b"NOT_STORED\r\n",
             "holdoff_max 60: delete k 30 refuses add")
    expect(t, c.ctl("config", "set", "dataplane.lease_window", "0"), USAGE, "lease_window 0",
           "dataplane.lease_window")


def section_metrics(t, c):
    t.begin("metrics")
    url = "http://127.0.0.1:%d/metrics" % c.metrics_port
    body = urllib.request.urlopen(url, timeout=5).read().decode()
    for name in ("memcached_up 1", "memcached_current_items", "memcached_commands_total{",
                 "memcached_slab_current_pages{slab=", "cachet_control_restarts_total"):
        t.check(name in body, "metrics has %s" % name, body[:500])
    new_port = harness.free_port()
    expect(t, c.ctl("config", "set", "metrics.port", str(new_port)), OK, "move metrics port")
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % new_port, timeout=5).read()
    t.check(b"memcached_up 1" in body, "metrics served on the new port")
    try:
        urllib.request.urlopen(url, timeout=2)
        t.fail("old metrics port closed")
    except OSError:
        t.check(True, "old metrics port closed")
    expect(t, c.ctl("config", "set", "metrics.port", "70000"), USAGE, "metrics port 70000",
           "metrics.port")


def section_top(t, c):
    t.begin("top")
    out = expect(t, c.ctl("top", "--iterations", "2", "--interval", "0.2", timeout=20), OK, "top")
    t.eq(out.count("cachet top"), 2, "top printed 2 frames")
    t.check("ops/s" in out and "hit ratio" in out and "evictions" in out, "top fields", out)
    expect(t, c.ctl("top", "--iterations", "-1"), USAGE, "top negative iterations")
    expect(t, c.ctl("top", "--interval", "0"), USAGE, "top interval 0")


def section_upgrade_errors(t, c):
    t.begin("upgrade input")
    expect(t, c.ctl("upgrade", "--binary", "/nonexistent/cachetd"), FAILED, "upgrade bad binary",
           "/nonexistent/cachetd")
    expect(t, c.ctl("upgrade", "--bogus"), USAGE, "upgrade bad flag", "--bogus")


def section_restart_stop(t, c):
    t.begin("restart")
    with harness.Conn(c.port) as conn:
        harness.set_item(conn, "kept", b"across restart")
    pid = c.dataplane_pid()
    expect(t, c.ctl("restart"), OK, "restart", "serving after")
    new_pid = c.dataplane_pid()
    t.check(new_pid and new_pid != pid, "restart: new cachetd pid", "%s -> %s" % (pid, new_pid))
    with harness.Conn(c.port) as conn:
        t.eq(harness.get_item(conn, "kept"), (0, b"across restart"), "item kept across restart")
    t.eq(c.status()["dataplane"]["restarts"], 0, "restart is not counted as a crash")
    t.begin("stop")
    expect(t, c.ctl("stop", "--bogus"), USAGE, "stop bad flag")
    expect(t, c.ctl("stop"), OK, "stop", "kept")
    t.eq(c.wait_exit(), 0, "cachet-control exits 0 after stop")
    t.check(os.path.exists("/dev/shm/" + c.arena) or os.path.exists("/dev/hugepages/" + c.arena),
            "stop keeps the arena")
    expect(t, c.ctl("status"), NO_CONTROL, "status with no control process", "no cachet-control")


def main():
    a = tc.parse_args(__doc__)
    t = harness.Checker("control_cli", a.verbose)
    t.begin("usage")
    rc, _, err = harness.run_tool([a.ctl, "--socket", "/nonexistent/x.sock", "status"], 10)
    t.eq(rc, NO_CONTROL, "no control process: exit 3")
    rc, _, err = harness.run_tool([a.ctl, "frobnicate"], 10)
    t.eq(rc, USAGE, "unknown command: exit 2")
    with tc.Control(a, metrics=True) as c:
        for s in (section_status, section_stats, section_config, section_metrics, section_top,
                  section_upgrade_errors, section_restart_stop):
            t.run_section(s, t, c)
        if t.failures:
            print("control log:\n" + c.log())
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 150)
