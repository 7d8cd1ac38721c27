"""Upgrade orchestration of the real cachet-control against a fake cachetd that follows the
upgrade contract (tests/integration/fake_cachetd.py): a successful upgrade with progress and
timings and no refused connection while it runs, a refused one (incompatible arena layout: exit 4,
the old cachetd keeps serving), the same with --discard-cache, a new binary that fails to start,
one without --takeover, and restarts after an upgrade using the new binary.

    /usr/bin/python3 tests/integration/test_control_upgrade_fake.py build/dataplane/daemon/cachetd \
        --control build/control/cachet-control --ctl build/control/cachetctl
(the positional cachetd is not used: every cachetd here is the fake)
"""

import os
import socket
import threading
import time

import harness
import test_control_common as tc

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_cachetd.py")


def wrapper(directory, name, *fake_args):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec /usr/bin/python3 %s %s \"$@\"\n"
                % (os.path.abspath(FAKE), " ".join(fake_args)))
    os.chmod(path, 0o755)
    return path


class Prober:
    """Connects to the TCP port over and over and asks `version`; counts what failed."""

    def __init__(self, port):
        self.port = port
        self.ok = 0
        self.failures = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=3) as s:
                    s.sendall(b"version\r\n")
                    if not s.recv(100).startswith(b"VERSION"):
                        self.failures.append("bad reply")
                    else:
                        self.ok += 1
            except OSError as e:
                self.failures.append(repr(e))
            time.sleep(0.002)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=10)


def version(c):
    with harness.Conn(c.port) as conn:
        return conn.request(b"version\r\n").strip()


def section_upgrade_ok(t, c, bins):
    t.begin("upgrade")
    old = c.status()["dataplane"]
    prober = Prober(c.port)
    time.sleep(0.3)
    rc, out, err = c.ctl("upgrade", timeout=60)
    time.sleep(0.1)
    prober.finish()
    t.eq(rc, 0, "upgrade exit status 0")
    for needle in ("started new cachetd", "serving after", "exited", "upgraded:"):
        t.check(needle in out, "progress shows %r" % needle, out + err)
    t.eq(prober.failures, [], "no connection failed or was refused during the upgrade")
    t.check(prober.ok > 10, "the prober was served throughout (%d requests)" % prober.ok)
    s = c.status()
    new = s["dataplane"]
    t.check(new["pid"] != old["pid"], "a new cachetd pid", "%s -> %s" % (old["pid"], new["pid"]))
    t.check(not os.path.exists("/proc/%d" % old["pid"]) or
            open("/proc/%d/stat" % old["pid"]).read().split()[2] == "Z",
            "the old cachetd exited")
    up = s.get("last_upgrade", {})
    t.check(up.get("ok") is True and up.get("serve_ms", -1) >= 0 and
            up.get("total_ms", -1) >= up.get("serve_ms", 0), "status reports the timings", str(up))
    link = c.socket + ".cachetd"
    t.eq(os.path.realpath(link), os.path.realpath(new["admin"]), "admin link follows the new one")
    t.check(not os.path.exists(old["admin"]), "old admin socket removed")
    rc, out, _ = c.ctl("stats")
    t.check(rc == 0 and "fake-layout-1" in out, "stats come from the new cachetd", out)


def section_refused(t, c, bins):
    t.begin("refused")
    pid = c.dataplane_pid()
    rc, out, err = c.ctl("upgrade", "--binary", bins["v2"], timeout=60)
    t.eq(rc, 4, "refused upgrade exits 4")
    t.check("refused:" in err and "layout" in err and "keeps serving" in err,
            "message says refused and why", err)
    t.eq(c.dataplane_pid(), pid, "the old cachetd still runs")
    t.eq(version(c), b"VERSION fake-layout-1", "and still serves")
    t.eq(c.status()["last_upgrade"].get("code"), "refused", "status records the refusal")


def section_failures(t, c, bins):
    t.begin("new binary fails")
    pid = c.dataplane_pid()
    rc, out, err = c.ctl("upgrade", "--binary", bins["fail"], timeout=60)
    t.eq(rc, 1, "failing new binary exits 1")
    t.check("simulated start failure" in err, "its message is reported", err)
    rc, out, err = c.ctl("upgrade", "--binary", bins["old"], timeout=60)
    t.eq(rc, 1, "binary without --takeover exits 1")
    t.check("does not support upgrade in place" in err, "says it cannot upgrade", err)
    t.eq(c.dataplane_pid(), pid, "the old cachetd still runs after both")
    t.eq(version(c), b"VERSION fake-layout-1", "and still serves")


def section_discard(t, c, bins):
    t.begin("discard-cache")
    rc, out, err = c.ctl("upgrade", "--binary", bins["v2"], "--discard-cache", timeout=60)
    t.check(rc == 0, "upgrade with --discard-cache succeeds", "rc %s: %s" % (rc, out + err))
    t.eq(version(c), b"VERSION fake-layout-2", "the new layout serves")
    t.begin("after the upgrade")
    pid = c.dataplane_pid()
    rc, out, err = c.ctl("restart", timeout=60)
    t.check(rc == 0, "restart", "rc %s: %s" % (rc, err))
    t.eq(version(c), b"VERSION fake-layout-2", "restart keeps the upgraded binary")
    pid = c.dataplane_pid()
    os.kill(pid, 9)
    c.wait_running(not_pid=pid)
    t.eq(version(c), b"VERSION fake-layout-2", "crash restart uses the upgraded binary")


def main():
    a = tc.parse_args(__doc__)
    t = harness.Checker("control_upgrade_fake", a.verbose)
    d = os.path.join("/tmp", "cachet-fake-%d" % os.getpid())
    os.makedirs(d, exist_ok=True)
    bins = {"v1": wrapper(d, "fake-v1", "--layout", "1"),
            "v2": wrapper(d, "fake-v2", "--layout", "2"),
            "fail": wrapper(d, "fake-fail", "--layout", "1", "--fail-start"),
            "old": wrapper(d, "fake-old", "--layout", "1", "--no-takeover")}
    try:
        with tc.Control(a, binary=bins["v1"]) as c:
            for s in (section_upgrade_ok, section_refused, section_failures, section_discard):
                t.run_section(s, t, c, bins)
            if t.failures:
                print("control log:\n" + c.log())
    finally:
        for p in bins.values():
            os.unlink(p)
        os.rmdir(d)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, 120)
