"""cachet-control's configuration and life cycle, real processes: the embedded default config
(printed, read back, and run with no file at all, as ./scripts/run does), flags after `--`
overriding it, a clear error naming the key for every kind of bad config, clean exit on SIGINT
and SIGTERM (cachetd stopped, socket removed), and a cachetd that cannot start ending
cachet-control with a message instead of a restart loop.

    /usr/bin/python3 tests/integration/test_control_config.py build/dataplane/daemon/cachetd \
        --control build/control/cachet-control --ctl build/control/cachetctl
"""

import os
import signal
import socket
import tempfile
import tomllib

from pymemcache.client.base import Client

import harness
import test_control_common as tc


def run(a, *argv, timeout=20):
    return harness.run_tool([a.control] + list(argv), timeout)


def section_default_config(t, a, tmp):
    t.begin("embedded default config")
    rc, text, err = run(a, "--print-default-config")
    t.eq(rc, 0, "--print-default-config exits 0")
    cfg = tomllib.loads(text)
    for sec in ("control", "dataplane", "supervisor", "upgrade", "metrics"):
        t.check(sec in cfg, "default config has [%s]" % sec)
    lines = text.splitlines()
    undocumented = [ln for i, ln in enumerate(lines)
                    if "=" in ln and not ln.startswith("#") and not lines[i - 1].startswith("#")]
    t.eq(undocumented, [], "every option has a description line")
    t.eq(cfg["dataplane"]["port"], 11211, "default port 11211")
    t.eq(cfg["metrics"]["port"], 9211, "default metrics port 9211")
    path = os.path.join(tmp, "default.toml")
    with open(path, "w") as f:
        f.write(text)
    rc1, line1, err1 = run(a, "--config", path, "--check")
    rc2, line2, err2 = run(a, "--check")
    t.check(rc1 == 0 and rc2 == 0 and line1 == line2,
            "the printed config reads back to the embedded defaults", line1 + err1 + line2 + err2)
    t.check("/dataplane/daemon/cachetd " in line2, "cachetd found next to cachet-control", line2)
    rc, line, _ = run(a, "--check", "--", "-p", "11311", "-m", "256")
    t.check(rc == 0 and line.rstrip().endswith("-p 11311 -m 256") and "--shm cachet-11311" in line,
            "flags after -- override, arena named after the port", line)


def bad(t, a, tmp, text, needles, what, flags=()):
    path = os.path.join(tmp, "bad.toml")
    with open(path, "w") as f:
        f.write(text)
    rc, out, err = run(a, "--config", path, "--check", *(["--"] + list(flags) if flags else []))
    t.eq(rc, 2, "%s: exit status 2" % what)
    for n in needles:
        t.check(n in err, "%s: message names %r" % (what, n), err)


def section_bad_config(t, a, tmp):
    t.begin("bad config")
    bad(t, a, tmp, "[dataplane]\nprot = 1\n", ["dataplane.prot", ":2"], "unknown key")
    bad(t, a, tmp, "[dataplan]\nport = 1\n", ["dataplan"], "unknown section")
    bad(t, a, tmp, "[dataplane]\nport = \"x\"\n", ["dataplane.port", "integer"], "wrong type")
    bad(t, a, tmp, "[dataplane]\nport = 70000\n", ["dataplane.port", "70000"], "port range")
    bad(t, a, tmp, "[dataplane]\nthreads = 0\n", ["dataplane.threads"], "threads 0")
    bad(t, a, tmp, "[dataplane]\ngrowth_factor = 3.0\n", ["dataplane.growth_factor"], "factor")
    bad(t, a, tmp, "[dataplane]\ndriver = \"netmap\"\n", ["dataplane.driver", "netmap"], "driver")
    bad(t, a, tmp, "[dataplane]\nverbosity = 5\n", ["dataplane.verbosity"], "verbosity")
    bad(t, a, tmp, "[dataplane]\nextra_args = [1]\n", ["dataplane.extra_args"], "extra_args")
    bad(t, a, tmp, "[dataplane]\nextra_args = [\"--bogus\"]\n", ["dataplane.extra_args", "--bogus"],
        "bad extra flag")
    bad(t, a, tmp, "[dataplane]\nmemory_mb = 8\nitem_size_max = 8388608\n", ["-I"], "-I over -m/2")
    bad(t, a, tmp, "[supervisor]\nbackoff_max_ms = 0\n", ["supervisor.backoff_max_ms"], "backoff")
    bad(t, a, tmp, "[metrics]\nport = -1\n", ["metrics.port"], "metrics port")
    bad(t, a, tmp, "[control]\nlog_level = \"loud\"\n", ["control.log_level"], "log level")
    bad(t, a, tmp, "[dataplane\nport = 1\n", ["bad.toml:1"], "TOML syntax")
    bad(t, a, tmp, "", ["-p", "notaport"], "bad flag after --", flags=["-p", "notaport"])
    bad(t, a, tmp, "", ["--admin-socket", "managed"], "managed flag after --",
        flags=["--admin-socket", "/tmp/x"])
    rc, _, err = run(a, "--config", os.path.join(tmp, "missing.toml"))
    t.check(rc == 2 and "missing.toml" in err, "missing config file named", err)
    rc, _, err = run(a, "--bogus")
    t.check(rc == 2 and "--bogus" in err, "unknown option", err)


def section_no_file_and_signals(t, a, tmp):
    for sig in (signal.SIGINT, signal.SIGTERM):
        t.begin("no config file, %s" % signal.Signals(sig).name)
        port = harness.free_port()
        sock = os.path.join(tmp, "c%d.sock" % sig)
        log = os.path.join(tmp, "c%d.log" % sig)
        p = harness.spawn([a.control, "--socket", sock, "--", "-p", str(port), "-t", "2"], log)
        c = tc.Control(a, port=port, start=False)
        c.socket, c.proc, c.arena = sock, p, "cachet-%d" % port
        try:
            c.wait_running()
            s = c.status()
            t.eq(s["control"]["config"], "embedded default configuration", "runs with no file")
            mc = Client(("127.0.0.1", port), connect_timeout=2, timeout=5)
            mc.set("k", b"v")
            t.eq(mc.get("k"), b"v", "serves clients")
            pid = s["dataplane"]["pid"]
            os.kill(p.pid, sig)
            t.eq(c.wait_exit(), 0, "cachet-control exits 0")
            t.check(not os.path.exists("/proc/%d" % pid), "cachetd stopped with it")
            t.check(not os.path.exists(sock), "control socket removed")
            t.check(os.path.exists("/dev/shm/" + c.arena) or
                    os.path.exists("/dev/hugepages/" + c.arena), "arena kept")
        finally:
            c.stop()


def section_start_failure(t, a, tmp):
    t.begin("cachetd cannot start")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    log = os.path.join(tmp, "fail.log")
    p = harness.spawn([a.control, "--socket", os.path.join(tmp, "f.sock"), "--", "-p", str(port)],
                      log)
    try:
        rc = p.wait(timeout=20)
    except Exception:
        harness.stop_pid(p)
        rc = None
    busy.close()
    text = open(log).read()
    t.eq(rc, 1, "cachet-control exits 1")
    t.check("before it served; not retrying" in text, "and says why", text[-800:])
    try:
        os.unlink("/dev/shm/cachet-%d" % port)
    except OSError:
        pass


def main():
    a = tc.parse_args(__doc__)
    t = harness.Checker("control_config", a.verbose)
    tmp = tempfile.mkdtemp(prefix="cachet-cfg-")
    for s in (section_default_config, section_bad_config, section_no_file_and_signals,
              section_start_failure):
        t.run_section(s, t, a, tmp)
    harness.shutil.rmtree(tmp, ignore_errors=True)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 120)
