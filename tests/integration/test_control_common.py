"""Shared by the test_control_*.py integration tests (not a test itself): start a real
cachet-control (which starts cachetd) in a private directory with a config file and free ports,
run cachetctl against it, read its status, and stop it by pid.

Every wait is bounded; every process is started through harness.spawn (PR_SET_PDEATHSIG, stopped
by pid from harness.stop_all); the arena each instance names is removed at the end.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def parse_args(description, extra=None):
    def more(p):
        p.add_argument("--control", required=True, help="cachet-control binary")
        p.add_argument("--ctl", required=True, help="cachetctl binary")
        if extra:
            extra(p)
    return harness.parse_args(description, more)


class Control:
    """cachet-control with a config file in a temporary directory, on a free port."""

    def __init__(self, args, config="", flags=(), port=None, metrics=False, binary=None,
                 start=True, use_config=True):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="cachet-ctl-")
        self.socket = os.path.join(self.dir, "control.sock")
        self.port = port or harness.free_port()
        self.metrics_port = harness.free_port() if metrics else 0
        self.arena = "cachet-it-%d-%d" % (os.getpid(), self.port)
        self.log_path = os.path.join(self.dir, "control.log")
        self.config_path = os.path.join(self.dir, "cachet.toml")
        self.proc = None
        base = ("[dataplane]\nport = %d\nthreads = 2\nmemory_mb = 64\narena = \"%s\"\n%s\n"
                "[metrics]\nport = %d\n[supervisor]\nbackoff_initial_ms = 50\n"
                % (self.port, self.arena, 'binary = "%s"\n' % binary if binary else "",
                   self.metrics_port))
        with open(self.config_path, "w") as f:
            f.write(merge_toml(base, config))
        self.cmd = [args.control, "--socket", self.socket]
        if use_config:
            self.cmd += ["--config", self.config_path]
        if flags:
            self.cmd += ["--"] + list(flags)
        if start:
            self.start()

    def start(self, timeout=20.0):
        self.proc = harness.spawn(self.cmd, self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("cachet-control exited with %s during start-up; log:\n%s"
                                   % (self.proc.returncode, self.log()))
            rc, out, _ = self.ctl("--json", "status", timeout=5)
            if rc == 0 and json.loads(out)["status"]["dataplane"]["state"] == "running":
                return
            time.sleep(0.05)
        raise RuntimeError("cachet-control did not get cachetd running within %.0f s; log:\n%s"
                           % (timeout, self.log()))

    def ctl(self, *argv, timeout=30):
        """Runs cachetctl --socket S argv...; returns (rc, stdout, stderr)."""
        return harness.run_tool([self.args.ctl, "--socket", self.socket] + list(argv), timeout)

    def status(self):
        rc, out, err = self.ctl("--json", "status", timeout=10)
        if rc != 0:
            raise RuntimeError("cachetctl status failed (%s): %s" % (rc, err))
        return json.loads(out)["status"]

    def dataplane_pid(self):
        return self.status()["dataplane"].get("pid")

    def wait_running(self, not_pid=None, timeout=20.0):
        """Waits until cachetd runs (with a pid other than not_pid); returns its pid."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                d = self.status()["dataplane"]
                if d["state"] == "running" and d.get("pid") and d.get("pid") != not_pid:
                    return d["pid"]
            except (RuntimeError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        raise RuntimeError("cachetd not running again within %.0f s; log:\n%s"
                           % (timeout, self.log()))

    def log(self, n=6000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=15.0):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc is not None:
            harness.stop_pid(self.proc, term_timeout=15.0)
        for path in ("/dev/shm/" + self.arena, "/dev/hugepages/" + self.arena):
            try:
                os.unlink(path)
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def merge_toml(base, extra):
    """base with the [section] key lines of extra replacing or adding to it (flat TOML only)."""
    sections = {}
    order = []
    for text in (base, extra):
        sec = None
        for line in text.splitlines():
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            if s.startswith("["):
                sec = s
                if sec not in sections:
                    sections[sec] = {}
                    order.append(sec)
                continue
            k = s.split("=", 1)[0].strip()
            sections[sec][k] = s
    return "".join("%s\n%s\n" % (sec, "\n".join(sections[sec].values())) for sec in order)


def cachetd_supports(binary, flag):
    rc, out, _ = harness.run_tool([binary, "-h"], 10)
    return rc == 0 and flag in out
