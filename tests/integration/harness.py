"""Shared harness for Cachet's black-box integration tests: start a server on a free loopback
port, talk to it over raw sockets, stop it by pid, and collect check failures. The benchmarks
(perf/, ./perf/run) start and stop their processes and pick their ports with it too.

Every test script takes the binary under test as its first positional argument (meson passes the
built cachetd) or as `--server PATH`, so each test also runs against stock memcached:

    /usr/bin/python3 tests/integration/test_x.py --server /usr/bin/memcached

Every wait is bounded; every process started here is stopped by its pid (SIGTERM, then SIGKILL
after a timeout) from a try/finally, an atexit hook and a SIGTERM handler, and is also asked to
die with this process (PR_SET_PDEATHSIG). Nothing here ever kills by name.
"""

import argparse
import atexit
import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

LOOPBACK = "127.0.0.1"
DEFAULT_REFERENCE = "/usr/bin/memcached"

_live_procs = {}  # pid -> Popen, everything this process started and has not reaped yet
_live_servers = []  # Server objects not stopped yet (their log directories go with them)


# --------------------------------------------------------------------------------------------
# Command line, watchdog, failure collection


def parse_args(description, extra=None):
    """Parse the common flags. `extra(parser)` may add test-specific ones."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("server_pos", nargs="?", metavar="SERVER",
                   help="server binary under test (cachetd); same as --server")
    p.add_argument("--server", help="server binary under test (e.g. /usr/bin/memcached)")
    p.add_argument("--reference", default=DEFAULT_REFERENCE,
                   help="stock memcached used as the reference (default %(default)s)")
    p.add_argument("--verbose", "-v", action="store_true", help="print every check")
    if extra:
        extra(p)
    a = p.parse_args()
    a.server = a.server or a.server_pos
    if not a.server:
        p.error("no server binary given (positional SERVER or --server PATH)")
    if not os.access(a.server, os.X_OK):
        p.error("server binary %r is not executable" % a.server)
    return a


class Checker:
    """Collects failed checks so one run reports every problem, then exits non-zero."""

    def __init__(self, name, verbose=False):
        self.name = name
        self.verbose = verbose
        self.failures = []
        self.passed = 0
        self.section = ""

    def begin(self, section):
        self.section = section
        if self.verbose:
            print("--- %s" % section, flush=True)

    def check(self, cond, what, detail=""):
        label = "%s: %s" % (self.section, what) if self.section else what
        if cond:
            self.passed += 1
            if self.verbose:
                print("ok   %s" % label, flush=True)
        else:
            detail = detail if isinstance(detail, str) or detail is None else show(detail)
            msg = label + ("\n       " + detail.replace("\n", "\n       ") if detail else "")
            self.failures.append(msg)
            print("FAIL %s" % msg, flush=True)
        return bool(cond)

    def eq(self, actual, expected, what):
        return self.check(actual == expected, what,
                          "expected %s\n  actual %s" % (show(expected), show(actual)))

    def fail(self, what, detail=""):
        return self.check(False, what, detail)

    def run_section(self, fn, *args):
        """Run one section; an exception fails it (with its traceback) and later sections run."""
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - reported as a failure
            self.fail("section %s raised" % fn.__name__, traceback.format_exc(limit=4))

    def finish(self):
        print("%s: %d checks passed, %d failed" % (self.name, self.passed, len(self.failures)),
              flush=True)
        if self.failures:
            print("FAILURES:", flush=True)
            for f in self.failures:
                print("  - " + f, flush=True)
            return 1
        if self.passed == 0:
            print("no checks ran: a test that cannot fail is a defect", flush=True)
            return 1
        return 0


def show(v, limit=300):
    """Readable, bounded repr of bytes (or anything)."""
    if isinstance(v, (bytes, bytearray)):
        b = bytes(v)
        if len(b) > limit:
            return "%r...(%d bytes total)" % (b[:limit], len(b))
        return repr(b)
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


class Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise Timeout("test watchdog expired")


def _on_term(signum, frame):
    raise SystemExit("terminated by signal %d" % signum)


def run(main, watchdog_s):
    """Run main() under a watchdog; stop every started process whatever happens."""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    signal.alarm(int(watchdog_s))
    rc = 1
    try:
        rc = main()
    except Timeout:
        traceback.print_exc()
        print("FAIL: test did not finish within %d s" % watchdog_s, flush=True)
        rc = 1
    except Exception:
        traceback.print_exc()
        rc = 1
    finally:
        signal.alarm(0)
        stop_all()
    sys.exit(rc)


# --------------------------------------------------------------------------------------------
# Processes


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the child gets SIGKILL if this process dies, even by SIGKILL.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def spawn(cmd, log_path, cwd=None, stdin=None):
    """Start cmd with stdout+stderr to log_path; remember it for stop_all(). stdin: a file, or
    subprocess.PIPE (p.stdin then); nothing by default."""
    log = open(log_path, "ab")
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL if stdin is None else stdin,
                             stdout=log, stderr=subprocess.STDOUT,
                             cwd=cwd, preexec_fn=_die_with_parent, close_fds=True)
    finally:
        log.close()
    _live_procs[p.pid] = p
    return p


def stop_pid(p, term_timeout=5.0, sig=signal.SIGTERM):
    """`sig` (SIGTERM) to the process by pid, SIGKILL after term_timeout; reap it. Returns the
    exit code."""
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=term_timeout)
        except subprocess.TimeoutExpired:
            print("process %d ignored signal %d for %.0f s, sending SIGKILL"
                  % (p.pid, sig, term_timeout), flush=True)
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)
    if p.stdin:
        p.stdin.close()
    _live_procs.pop(p.pid, None)
    return p.returncode


def stop_all():
    for srv in list(_live_servers):
        try:
            srv.stop()
        except Exception:
            traceback.print_exc()
    for p in list(_live_procs.values()):
        try:
            stop_pid(p)
        except Exception:
            traceback.print_exc()


atexit.register(stop_all)


def run_tool(cmd, timeout_s):
    """Run a client tool to completion (bounded); returns (rc, stdout, stderr) as text.
    On timeout the tool is killed by pid and rc is None."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
    _live_procs[p.pid] = p
    try:
        out, err = p.communicate(timeout=timeout_s)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        stop_pid(p, term_timeout=2.0)
        out, err = p.communicate()
        rc = None
    _live_procs.pop(p.pid, None)
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def tail(path, n=4000):
    """The last n bytes of a log file as text ("" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


def rss_kb(pid):
    """VmRSS of pid in kB (0 if unknown)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port(udp_too=False):
    """A loopback port that is free right now (TCP, and UDP as well if udp_too)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind((LOOPBACK, 0))
            port = t.getsockname()[1]
            if not udp_too:
                return port
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind((LOOPBACK, port))
                return port
            except OSError:
                continue
            finally:
                u.close()
        finally:
            t.close()
    raise RuntimeError("no free loopback port found")


def is_memcached(binary):
    return os.path.basename(binary).startswith("memcached")


class Server:
    """A cache server (cachetd or memcached) on a free loopback port.

    Flags are memcached's: -p PORT -U UDPPORT|0 -l 127.0.0.1 -m MB -t THREADS -c CONNS [-I SIZE]
    plus `extra`. `port` fixes the port (a server restarted where its clients expect it).
    Use as a context manager or call stop()."""

    def __init__(self, binary, udp=False, memory_mb=64, threads=2, conns=1024, item_max=None,
                 extra=(), name=None, start_timeout=10.0, port=None):
        self.binary = binary
        self.udp = udp
        self.name = name or os.path.basename(binary)
        self.tmpdir = tempfile.mkdtemp(prefix="cachet-it-")
        self.log_path = os.path.join(self.tmpdir, "server.log")
        self.proc = None
        last_err = None
        for attempt in range(1 if port else 5):
            port = port or free_port(udp_too=udp)
            cmd = [binary, "-p", str(port), "-U", str(port if udp else 0), "-l", LOOPBACK,
                   "-m", str(memory_mb), "-t", str(threads), "-c", str(conns)]
            if item_max is not None:
                cmd += ["-I", str(item_max)]
            if is_memcached(binary) and os.geteuid() == 0:
                cmd += ["-u", "root"]
            cmd += list(extra)
            self.cmd = cmd
            self.port = port
            self.udp_port = port if udp else None
            self.proc = spawn(cmd, self.log_path)
            try:
                self._wait_ready(start_timeout)
                _live_servers.append(self)
                return
            except RuntimeError as e:
                last_err = e
                if self.proc.poll() is None:
                    stop_pid(self.proc)
                    break  # running but not answering: not a port race
                _live_procs.pop(self.proc.pid, None)
        tail = self.log_tail()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        raise RuntimeError("%s did not start: %s\ncommand: %s\nlog:\n%s"
                           % (self.name, last_err, " ".join(self.cmd), tail))

    @property
    def pid(self):
        return self.proc.pid

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("exited with code %s during start-up" % self.proc.returncode)
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as s:
                    s.settimeout(1.0)
                    s.sendall(b"version\r\n")
                    if s.recv(256):
                        break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("no reply on TCP port %d within %.0f s" % (self.port, timeout))
        if not self.udp:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(0.2)
            while time.monotonic() < deadline:
                u.sendto(struct.pack("!HHHH", 0x7777, 0, 1, 0) + b"version\r\n",
                         (LOOPBACK, self.udp_port))
                try:
                    u.recvfrom(65536)
                    return
                except OSError:
                    pass
            raise RuntimeError("no reply on UDP port %d within %.0f s" % (self.udp_port, timeout))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=4000):
        return tail(self.log_path, n)

    def check_alive(self, t, when="at the end"):
        """Record a failure (with the server's log) if the server is no longer running."""
        ok = self.alive()
        if not ok:
            t.fail("%s is still running %s" % (self.name, when),
                   "exit code %s; log tail:\n%s" % (self.proc.returncode, self.log_tail()))
        else:
            t.check(True, "%s is still running %s" % (self.name, when))
        return ok

    def stop(self):
        """Stop by pid (SIGTERM, then SIGKILL) and remove the log directory. Returns exit code."""
        if self.proc is None:
            return None
        rc = stop_pid(self.proc)
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        if self in _live_servers:
            _live_servers.remove(self)
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def connect(self, timeout=5.0):
        return Conn(self.port, timeout)


# --------------------------------------------------------------------------------------------
# Raw TCP connection


class Closed(Exception):
    """The peer closed the connection (EOF or reset) before the expected bytes arrived."""

    def __init__(self, got):
        super().__init__("connection closed; got %s" % show(got))
        self.got = got


class Conn:
    """A blocking loopback TCP connection with bounded reads."""

    def __init__(self, port, timeout=5.0):
        self.timeout = timeout
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out; have %s" % show(self.buf))
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            got, self.buf = self.buf, b""
            raise Closed(got)
        self.buf += chunk

    def read_until(self, term, timeout=None):
        """Bytes up to and including the first `term`."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            i = self.buf.find(term)
            if i >= 0:
                out, self.buf = self.buf[:i + len(term)], self.buf[i + len(term):]
                return out
            self._fill(deadline)

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self, timeout=None):
        return self.read_until(b"\r\n", timeout)

    def request(self, data, term=b"\r\n", timeout=None):
        """Send data, return the reply up to and including term."""
        self.send(data)
        return self.read_until(term, timeout)

    def read_retrieval(self, timeout=None):
        """A complete get/gets/gat reply: VALUE blocks then END (or an error line)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        out = b""
        while True:
            ln = self.read_until(b"\r\n", max(0.01, deadline - time.monotonic()))
            out += ln
            if ln.startswith(b"VALUE "):
                n = int(ln.split()[3])
                out += self.read_exact(n + 2, max(0.01, deadline - time.monotonic()))
            else:
                return out

    def read_all_quiet(self, quiet=0.2, timeout=None):
        """Whatever arrives until `quiet` seconds of silence (or EOF). Returns (data, closed)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        out, self.buf = self.buf, b""
        while time.monotonic() < deadline:
            self.sock.settimeout(min(quiet, max(0.001, deadline - time.monotonic())))
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False

    def wait_closed(self, timeout=3.0):
        """True if the peer closes within timeout (data received meanwhile is discarded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
        return False


def stats(conn, arg=b""):
    """`stats [arg]` as an ordered dict name -> value (bytes)."""
    cmd = b"stats" + (b" " + arg if arg else b"") + b"\r\n"
    conn.send(cmd)
    out = {}
    while True:
        ln = conn.line()
        if ln == b"END\r\n":
            return out
        parts = ln.rstrip(b"\r\n").split(b" ", 2)
        if parts[0] != b"STAT" or len(parts) < 2:
            raise ValueError("unexpected stats line %s" % show(ln))
        out[parts[1].decode()] = parts[2] if len(parts) > 2 else b""


def set_item(conn, key, value, flags=0, exptime=0):
    if isinstance(key, str):
        key = key.encode()
    r = conn.request(b"set %s %d %d %d\r\n" % (key, flags, exptime, len(value)) + value + b"\r\n")
    if r != b"STORED\r\n":
        raise AssertionError("set %s -> %s" % (show(key, 60), show(r)))


def get_item(conn, key):
    """(flags, value) or None."""
    if isinstance(key, str):
        key = key.encode()
    conn.send(b"get " + key + b"\r\n")
    ln = conn.line()
    if ln == b"END\r\n":
        return None
    parts = ln.split()
    if parts[0] != b"VALUE" or parts[1] != key:
        raise AssertionError("get %s -> %s" % (show(key, 60), show(ln)))
    n = int(parts[3])
    data = conn.read_exact(n + 2)
    end = conn.line()
    if data[-2:] != b"\r\n" or end != b"END\r\n":
        raise AssertionError("get %s: bad framing %s %s" % (show(key, 60), show(data[-2:]),
                                                            show(end)))
    return int(parts[2]), data[:-2]


def parse_values(raw):
    """{key: (flags, value)} from a get/gets reply of several VALUE blocks (read_retrieval)."""
    out, pos = {}, 0
    while raw.startswith(b"VALUE ", pos):
        eol = raw.index(b"\r\n", pos)
        _, key, flags, n = raw[pos:eol].split()[:4]
        start = eol + 2
        out[key] = (int(flags), raw[start:start + int(n)])
        pos = start + int(n) + 2
    return out


def udp_frame(req_id, payload, seq=0, total=1, reserved=0):
    return struct.pack("!HHHH", req_id, seq, total, reserved) + payload
