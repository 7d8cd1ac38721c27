"""A private PostgreSQL cluster for tests and benchmarks (not a test itself): initdb in a
temporary directory, started on a free loopback port with wal_level=logical, stopped by its pid.

PostgreSQL refuses to run as root; when this process is root the cluster runs as `nobody`
(setpriv, which also keeps the parent-death signal so no server outlives the test). Clients
connect over TCP on 127.0.0.1 as the superuser `postgres` (trust authentication, loopback
only). Needs Debian's postgresql (server) and python3-psycopg2 (client).
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import harness

RUN_AS = "nobody"


def bin_dir():
    """The newest /usr/lib/postgresql/<version>/bin that has initdb, or None."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                  key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(dirs[-1]) if dirs else None


def available():
    """(True, "") when a cluster can be started here, else (False, why)."""
    if not bin_dir():
        return False, "PostgreSQL server not installed (Debian package postgresql)"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return False, "python3-psycopg2 not installed"
    return True, ""


def _as_user(cmd):
    if os.geteuid() != 0:
        return cmd
    return ["setpriv", "--reuid=" + RUN_AS, "--regid=" + _group(), "--clear-groups",
            "--pdeathsig", "SIGKILL", "--"] + cmd


def _group():
    return str(pwd.getpwnam(RUN_AS).pw_gid)


class Postgres:
    """A running cluster. settings: extra `-c name=value` pairs (dict)."""

    def __init__(self, settings=None, start_timeout=60.0):
        self.bin = bin_dir()
        self.dir = tempfile.mkdtemp(prefix="cachet-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "postgres.log")
        if os.geteuid() == 0:
            pw = pwd.getpwnam(RUN_AS)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        rc, out, err = harness.run_tool(_as_user(
            [os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]), 120)
        if rc != 0:
            raise RuntimeError("initdb failed (%s):\n%s\n%s" % (rc, out, err))
        conf = {"listen_addresses": "127.0.0.1", "wal_level": "logical",
                "max_replication_slots": "8", "max_wal_senders": "8", "fsync": "off",
                "full_page_writes": "off", "unix_socket_directories": self.dir,
                "shared_buffers": "64MB", "max_connections": "60"}
        conf.update(settings or {})
        self.proc = None
        for _ in range(5):
            self.port = harness.free_port()
            cmd = [os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port)]
            for k, v in conf.items():
                cmd += ["-c", "%s=%s" % (k, v)]
            self.proc = harness.spawn(_as_user(cmd), self.log_path)
            if self._wait_ready(start_timeout):
                return
            self.stop()
        raise RuntimeError("postgres did not start; log:\n%s" % self.log_tail())

    def _wait_ready(self, timeout):
        import psycopg2
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                psycopg2.connect(self.conninfo(), connect_timeout=2).close()
                return True
            except psycopg2.OperationalError:
                time.sleep(0.1)
        return False

    def conninfo(self, dbname="postgres"):
        return "host=127.0.0.1 port=%d user=postgres dbname=%s" % (self.port, dbname)

    def connect(self, autocommit=True, dbname="postgres"):
        import psycopg2
        c = psycopg2.connect(self.conninfo(dbname), connect_timeout=10)
        c.autocommit = autocommit
        return c

    def execute(self, sql, params=None):
        """Runs sql in its own autocommitted connection; returns the rows (if any)."""
        c = self.connect()
        try:
            with c.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else None
        finally:
            c.close()

    def log_tail(self, n=3000):
        return harness.tail(self.log_path, n)

    def stop(self):
        """Fast shutdown (SIGINT: clients, walsenders included, are disconnected), SIGKILL after
        20 s; removes the directory."""
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                harness.stop_pid(self.proc, term_timeout=1)
            except ProcessLookupError:
                pass
        if self.proc:
            harness.stop_pid(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
