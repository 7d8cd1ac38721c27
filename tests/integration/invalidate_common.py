"""Shared by the test_invalidate_*.py integration tests (not a test itself): cachet-invalidate
with a generated config in a private directory, its status (control socket) and metrics, waits
for states and counts, and cache reads.

Every script takes cachetd as its first argument and `--invalidate PATH` for the daemon. Every
wait is bounded and waits for a state or a count, never for a time; every process goes through
harness.spawn and is stopped by its pid.
"""

import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pg  # noqa: E402

WAIT_S = 60.0  # generous: the suite runs on a busy 2-core machine and under ASan


def parse_args(description, extra=None):
    def more(p):
        p.add_argument("--invalidate", required=True, help="cachet-invalidate binary")
        if extra:
            extra(p)
    return harness.parse_args(description, more)


def skip_without_postgres():
    ok, why = pg.available()
    if not ok:
        print("SKIP: %s" % why, flush=True)
        sys.exit(77)


def wait_until(fn, what, timeout=WAIT_S, interval=0.05):
    """Polls fn() until it returns a true value (returned); raises with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))


def pool_toml(name, servers=None, router=None, hash=None, holdoff_s=0):
    s = '[[pool]]\nname = "%s"\n' % name
    if servers is not None:
        s += "servers = [%s]\n" % ", ".join('"%s"' % x for x in servers)
    if router:
        s += 'router = "%s"\n' % router
    if hash:
        s += 'hash = "%s"\n' % hash
    if holdoff_s:
        s += "holdoff_s = %d\n" % holdoff_s
    return s


def rule_toml(table, keys):
    return '[[rule]]\ntable = "%s"\nkeys = [%s]\n' % (table, ", ".join('"%s"' % k for k in keys))


def server_spec(server, name=None):
    return "%s:%d:1%s" % (harness.LOOPBACK, server.port, " " + name if name else "")


class Invalidate:
    """cachet-invalidate on a config made of `body` (pools, rules, sections) plus the source,
    spool, control and metrics settings this class owns."""

    def __init__(self, binary, database, body, slot="cachet_it", start=True, wait_streaming=True,
                 extra_sections=""):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="cachet-inv-")
        self.socket = os.path.join(self.dir, "invalidate.sock")
        self.metrics_port = harness.free_port()
        self.log_path = os.path.join(self.dir, "invalidate.log")
        self.config_path = os.path.join(self.dir, "invalidate.toml")
        self.spool_dir = os.path.join(self.dir, "spool")
        conninfo = database.conninfo() if hasattr(database, "conninfo") else database
        with open(self.config_path, "w") as f:
            f.write('[source]\nconninfo = "%s"\nslot = "%s"\nfeedback_interval_ms = 20\n'
                    'retry_max_ms = 500\n[spool]\ndir = "%s"\n[control]\nsocket = "%s"\n'
                    'log_level = "debug"\n[metrics]\nport = %d\n%s\n%s'
                    % (conninfo, slot, self.spool_dir, self.socket, self.metrics_port,
                       extra_sections, body))
        self.proc = None
        if start:
            self.start(wait_streaming)

    def start(self, wait_streaming=True):
        self.proc = harness.spawn([self.binary, "--config", self.config_path], self.log_path)
        wait_until(lambda: self.proc.poll() is not None or self._answers(),
                   "cachet-invalidate's control socket")
        if self.proc.poll() is not None:
            raise RuntimeError("cachet-invalidate exited with %s; log:\n%s"
                               % (self.proc.returncode, self.log()))
        if wait_streaming:
            self.wait_streaming()

    def _answers(self):
        try:
            return self.call("ping").get("ok")
        except OSError:
            return False

    def wait_streaming(self):
        wait_until(lambda: self.status()["source"]["state"] == "streaming",
                   "the replication stream (log:\n%s)" % self.log()[-2000:])

    def call(self, cmd):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(self.socket)
            s.sendall((json.dumps({"cmd": cmd}) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return json.loads(buf)

    def status(self):
        return self.call("status")["status"]

    def server(self, pool, address):
        for p in self.status()["pools"]:
            if p["name"] == pool:
                for srv in p["servers"]:
                    if srv["address"] == address:
                        return srv
        raise KeyError("%s/%s" % (pool, address))

    def metrics_text(self):
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()

    def metrics(self):
        """{'name{labels}': value} of every sample."""
        out = {}
        for line in self.metrics_text().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def metric(self, name, **labels):
        key = name
        if labels:
            key += "{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}"
        return self.metrics().get(key)

    def log(self):
        return harness.tail(self.log_path, 1 << 30)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        """Prints the daemon's log when the test failed inside, then stops it."""
        if kind is not None:
            print("cachet-invalidate log (tail):\n" + self.log()[-5000:], flush=True)
        self.cleanup()
        return False

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        harness._live_procs.pop(self.proc.pid, None)

    def stop(self):
        rc = harness.stop_pid(self.proc, term_timeout=15) if self.proc else None
        self.proc = None
        return rc

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def present(server, keys):
    """The subset of keys the server holds (one multi-get per 100 keys)."""
    keys = list(keys)
    out = set()
    with server.connect(timeout=10) as c:
        for i in range(0, len(keys), 100):
            part = keys[i:i + 100]
            c.send(b"get " + b" ".join(k.encode() for k in part) + b"\r\n")
            out |= {k.decode() for k in harness.parse_values(c.read_retrieval())}
    return out


def fill(server, keys, value=b"cached"):
    with server.connect(timeout=10) as c:
        for k in keys:
            harness.set_item(c, k, value)


def slot_position(database, slot):
    rows = database.execute("SELECT confirmed_flush_lsn::text, active FROM pg_replication_slots "
                            "WHERE slot_name = %s", (slot,))
    return rows[0] if rows else None


def lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def log_has(daemon, pattern):
    return re.search(pattern, daemon.log()) is not None
