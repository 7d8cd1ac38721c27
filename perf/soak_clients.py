"""The clients of ./perf/run soak (perf/soak.py): the well-behaved mixed client and its checks,
the preload, the hostile clients (slow readers, half-open, stallers, churn past -c, UDP flood)
and the memcslap loop. Each runs until the arm's deadline and stops by itself; all talk to
127.0.0.1 only."""

import random
import re
import resource
import select
import shutil
import socket
import struct
import time

import harness

HOST = "127.0.0.1"
VALUE_MAX = 1_000_000            # the largest value (-I 1m leaves room for key and header)
SLOW_KEY = b"soak:slow:big"      # the value slow readers ask for, VALUE_MAX bytes
FILL = bytes((i * 131 + (i >> 8) * 7 + 13) & 0xFF for i in range((1 << 20) + 256))
MEMCSLAP_ERROR = re.compile(r"fatal|fail|error|timeout|refused", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# Values: "<key>|<version>|" then FILL from an offset that depends on the version.


def make_value(key, ver, size):
    head = b"%s|%d|" % (key, ver)
    off = ver % 251
    return (head + FILL[off:off + max(0, size - len(head))])[:max(size, len(head))]


def check_value(key, data, size):
    """None when data is a value make_value could have produced for key, else what is wrong."""
    parts = data.split(b"|", 2)
    if len(parts) < 3 or parts[0] != key or not parts[1].isdigit():
        return "value of %r does not name it: %s" % (key, harness.show(data[:80]))
    if len(data) != max(size, len(parts[0]) + len(parts[1]) + 2):
        return "value of %r has %d bytes, its size is %d" % (key, len(data), size)
    if data != make_value(key, int(parts[1]), size):
        return "value of %r (version %s) is torn or corrupt" % (key, parts[1].decode())
    return None


def key_sizes(nkeys, seed=7):
    rnd = random.Random(seed)
    out = []
    for _ in range(nkeys):
        r = rnd.random()
        if r < 0.90:
            out.append(rnd.randint(16, 4096))
        elif r < 0.99:
            out.append(rnd.randint(4097, 100_000))
        else:
            out.append(rnd.randint(100_001, VALUE_MAX))
    return out


def shared_key(i):
    return b"soak:k:%d" % i


# ---------------------------------------------------------------------------------------------
# A blocking text-protocol connection with bounded reads.


class Failure(Exception):
    pass


class Client:
    def __init__(self, port, timeout=10.0):
        self.s = socket.create_connection((HOST, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        self.s.close()

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        try:
            chunk = self.s.recv(1 << 20)
        except socket.timeout:
            raise Failure("no reply within %.0f s" % self.s.gettimeout())
        except OSError as e:
            raise Failure("connection error: %s" % e)
        if not chunk:
            raise Failure("server closed the connection")
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return ln
            self._fill()

    def exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data = bytes(self.buf[:n])
        if self.buf[n:n + 2] != b"\r\n":
            raise Failure("data block not followed by CRLF")
        del self.buf[:n + 2]
        return data

    def retrieve(self, keys, gets=False):
        """{key: (flags, data, cas)} of a get/gets; raises Failure on anything else."""
        self.send(b"%s %s\r\n" % (b"gets" if gets else b"get", b" ".join(keys)))
        out = {}
        while True:
            ln = self.line()
            if ln == b"END":
                return out
            p = ln.split()
            if len(p) < 4 or p[0] != b"VALUE" or (gets and len(p) < 5):
                raise Failure("get %r: unexpected line %s" % (keys[0], harness.show(ln)))
            if p[1] not in keys or p[1] in out:
                raise Failure("get: key %r not asked for (or twice)" % p[1])
            out[p[1]] = (int(p[2]), self.exact(int(p[3])), int(p[4]) if gets else 0)

    def request(self, data):
        self.send(data)
        return self.line()

    def stats(self):
        self.send(b"stats\r\n")
        out = {}
        while True:
            ln = self.line()
            if ln == b"END":
                return out
            p = ln.split(b" ", 2)
            if len(p) == 3:
                out[p[1].decode()] = p[2].decode()


# ---------------------------------------------------------------------------------------------
# Well-behaved mixed client (a process). Counters in `shared`: [ops, failures] per client.


def mixed_client(idx, port, nkeys, rate, deadline, shared, outq, seed):
    rnd = random.Random(seed)
    sizes = key_sizes(nkeys)
    counts = {"ops": 0, "miss": 0, "failed": 0}
    fails = []
    owned = [b"soak:own:%d:%d" % (idx, j) for j in range(50)]
    owned_size = {k: rnd.randint(16, 20_000) for k in owned}
    counters = {}  # counter key -> expected value (None: unknown, reseed)
    ver = rnd.randint(1, 1 << 30)

    def hot():
        # Skewed toward low indices, but every key is reachable.
        return min(int(nkeys * rnd.random() ** 2.5), nkeys - 1)

    def fail(msg):
        counts["failed"] += 1
        shared[2 * idx + 1] += 1
        if len(fails) < 8:
            fails.append(msg)

    def one(c, op):
        nonlocal ver
        ver += 1
        if op == "get":
            i = hot()
            k = shared_key(i)
            got = c.retrieve([k])
            if k in got:
                bad = check_value(k, got[k][1], sizes[i])
                if bad:
                    raise Failure(bad)
            else:
                counts["miss"] += 1
        elif op == "set":
            i = hot()
            k = shared_key(i)
            v = make_value(k, ver, sizes[i])
            r = c.request(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v))
            if r != b"STORED":
                raise Failure("set %r (%d B): %s" % (k, len(v), harness.show(r)))
        elif op == "multiget":
            idxs = list({hot() for _ in range(rnd.randint(2, 10))})
            keys = [shared_key(i) for i in idxs]
            got = c.retrieve(keys)
            for i, k in zip(idxs, keys):
                if k in got:
                    bad = check_value(k, got[k][1], sizes[i])
                    if bad:
                        raise Failure("multiget: " + bad)
                else:
                    counts["miss"] += 1
        elif op == "delete":
            k = shared_key(hot())
            r = c.request(b"delete %s\r\n" % k)
            if r not in (b"DELETED", b"NOT_FOUND"):
                raise Failure("delete %r: %s" % (k, harness.show(r)))
        elif op == "incr":
            k = b"soak:ctr:%d:%d" % (idx, rnd.randrange(8))
            exp = counters.get(k)
            if exp is None:
                r = c.request(b"set %s 0 0 2\r\n10\r\n" % k)
                if r != b"STORED":
                    raise Failure("counter set %r: %s" % (k, harness.show(r)))
                counters[k] = exp = 10
            d = rnd.randint(1, 1000)
            r = c.request(b"incr %s %d\r\n" % (k, d))
            if r == b"NOT_FOUND":  # evicted: start again
                counts["miss"] += 1
                counters[k] = None
            elif r != b"%d" % (exp + d):
                raise Failure("incr %r by %d from %d: %s" % (k, d, exp, harness.show(r)))
            else:
                counters[k] = exp + d
        elif op == "cas":
            k = owned[rnd.randrange(len(owned))]
            size = owned_size[k]
            got = c.retrieve([k], gets=True)
            if k not in got:
                counts["miss"] += 1
                v = make_value(k, ver, size)
                r = c.request(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v))
                if r != b"STORED":
                    raise Failure("set %r: %s" % (k, harness.show(r)))
                return
            bad = check_value(k, got[k][1], size)
            if bad:
                raise Failure("gets: " + bad)
            token = got[k][2]
            v = make_value(k, ver, size)
            r = c.request(b"cas %s 0 0 %d %d\r\n%s\r\n" % (k, len(v), token, v))
            if r == b"NOT_FOUND":
                counts["miss"] += 1
                return
            if r != b"STORED":
                raise Failure("cas %r with a fresh token: %s" % (k, harness.show(r)))
            r = c.request(b"cas %s 0 0 %d %d\r\n%s\r\n" % (k, len(v), token, v))
            if r not in (b"EXISTS", b"NOT_FOUND"):
                raise Failure("cas %r with a stale token: %s" % (k, harness.show(r)))
        elif op == "meta":
            k = owned[rnd.randrange(len(owned))]
            v = make_value(k, ver, owned_size[k])
            r = c.request(b"ms %s %d T0\r\n%s\r\n" % (k, len(v), v))
            if r != b"HD":
                raise Failure("ms %r: %s" % (k, harness.show(r)))
            r = c.request(b"mg %s v\r\n" % k)
            if r == b"EN":
                counts["miss"] += 1
            elif r.startswith(b"VA "):
                data = c.exact(int(r.split()[1]))
                if data != v:
                    raise Failure("mg %r after ms: %s" % (k, check_value(k, data, len(v))
                                                          or "an older value"))
            else:
                raise Failure("mg %r: %s" % (k, harness.show(r)))
            dk = shared_key(hot())
            r = c.request(b"md %s\r\n" % dk)
            if r not in (b"HD", b"NF"):
                raise Failure("md %r: %s" % (dk, harness.show(r)))

    ops = ["get"] * 40 + ["set"] * 20 + ["multiget"] * 10 + ["delete"] * 5 + ["incr"] * 10 + \
        ["cas"] * 7 + ["meta"] * 8
    c = Client(port)
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        op = rnd.choice(ops)
        try:
            one(c, op)
        except Failure as e:
            fail("%s: %s" % (op, e))
            c.close()
            try:
                c = Client(port)
            except OSError as e2:
                fail("reconnect: %s" % e2)
                break
        counts["ops"] += 1
        shared[2 * idx] += 1
        next_at += 1.0 / rate
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -1.0:
            next_at = time.monotonic()  # behind by more than a second: do not burst
    c.close()
    outq.put((idx, counts, fails))


def preload(port, nkeys):
    sizes = key_sizes(nkeys)
    c = Client(port, timeout=60)
    batch = []
    for i in range(nkeys):
        k = shared_key(i)
        v = make_value(k, 0, sizes[i])
        batch.append(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(v), v))
        if len(batch) >= 64:
            c.send(b"".join(batch))
            batch = []
    v = make_value(SLOW_KEY, 0, VALUE_MAX)
    batch.append(b"set %s 0 0 %d noreply\r\n%s\r\n" % (SLOW_KEY, len(v), v))
    c.send(b"".join(batch))
    if c.request(b"version\r\n")[:7] != b"VERSION":
        raise RuntimeError("preload: no version reply")
    c.close()
    return sum(sizes)


# ---------------------------------------------------------------------------------------------
# Hostile clients


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rst_close(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def slow_readers(port, n, multiget, deadline, shared):
    """n connections for the whole run that pipeline gets of SLOW_KEY and a multiget of it,
    and two re-opened every 30 s (one closed with RST) that pipeline single gets; none reads."""
    single = (b"get %s\r\n" % SLOW_KEY) * 16
    req = (b"get %s\r\n" % SLOW_KEY) * 15 + b"get %s\r\n" % b" ".join([SLOW_KEY] * multiget)

    def open_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, port))
        s.setblocking(False)
        return s

    keep = [open_one() for _ in range(n)]
    cycling, cycled_at = [open_one() for _ in range(2)], time.monotonic()
    sent = 0
    while time.monotonic() < deadline:
        if time.monotonic() - cycled_at > 30:
            for i, s in enumerate(cycling):
                (rst_close if i % 2 else socket.socket.close)(s)
            cycling, cycled_at = [open_one() for _ in range(2)], time.monotonic()
            shared[0] += 2
        _, writable, _ = select.select([], keep + cycling, [], 1.0)
        for s in writable:
            try:
                sent += s.send(single if s in cycling else req)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass  # closed by the server: counted below
    for s in keep + cycling:
        s.close()


def idle_and_half_closed(port, n_idle, deadline, shared):
    """n_idle connections never used, and every 2 s a connection that sends a request, shuts
    down its write side and must be answered and closed by the server. shared[1] counts the
    half-closed ones the server did not close within 5 s, shared[2] those it did not answer,
    shared[8] those that failed on a socket error (connect or read)."""
    idle = [socket.create_connection((HOST, port), timeout=5) for _ in range(n_idle)]
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection((HOST, port), timeout=5)
            s.sendall(b"get soak:k:0\r\nversion\r\n")
            s.shutdown(socket.SHUT_WR)
            got, end, closed = b"", time.monotonic() + 5, False
            try:
                while not closed and time.monotonic() < end:
                    s.settimeout(max(0.01, end - time.monotonic()))
                    chunk = s.recv(1 << 16)
                    closed = not chunk
                    got += chunk
            except socket.timeout:
                pass
            if not closed:
                shared[1] += 1
            if b"VERSION" not in got:
                shared[2] += 1
            s.close()
        except OSError:
            shared[8] += 1  # refused, reset or timed out while connecting or reading
        time.sleep(max(0.0, min(2.0, deadline - time.monotonic())))
    for s in idle:
        s.close()


STALLS = [
    b"set soak:stall 0 0 500000\r\n" + FILL[:250_000],   # half a data block
    b"get soak:k:1 soak:k:2 soak:k:3",                  # a get line with no newline
    b"ms soak:stall 10 T0\r\n01234",                     # half a meta set
    b"mg soak:k:1 v",                                    # a meta get with no newline
    b"\x80\x00\x00\x05\x00\x00\x00\x00",                 # half a binary header
]


def stallers(port, deadline, shared):
    """Every 1.5 s a connection sends half a request and stalls 10 s, then closes."""
    live = []  # (close_at, socket, rst)
    i = 0
    while time.monotonic() < deadline:
        now = time.monotonic()
        for item in [x for x in live if x[0] <= now]:
            live.remove(item)
            (rst_close if item[2] else socket.socket.close)(item[1])
        try:
            s = socket.create_connection((HOST, port), timeout=5)
            s.sendall(STALLS[i % len(STALLS)])
            live.append((now + 10, s, i % 2 == 1))
            shared[3] += 1
        except OSError:
            pass
        i += 1
        time.sleep(max(0.0, min(1.5, deadline - time.monotonic())))
    for _, s, _ in live:
        s.close()


def churn(port, limit, every, deadline, lock, shared):
    """Every `every` s: limit + 32 connections at once (never while memcslap starts), each
    asked for `version`; the ones over the limit must be refused. Held 1 s, then closed."""
    raise_nofile()
    while time.monotonic() + every < deadline:
        time.sleep(every)
        with lock:
            socks = []
            for _ in range(limit + 32):
                try:
                    s = socket.create_connection((HOST, port), timeout=5)
                    socks.append(s)
                except OSError:
                    shared[5] += 1
            for s in socks:
                try:
                    s.sendall(b"version\r\n")
                except OSError:
                    pass
            for s in socks:
                try:
                    r = s.recv(256)
                except OSError:
                    r = b""
                if r.startswith(b"VERSION"):
                    shared[4] += 1
                else:
                    shared[5] += 1  # "ERROR Too many open connections", a close or a reset
            time.sleep(1.0)
            for j, s in enumerate(socks):
                (rst_close if j % 2 else socket.socket.close)(s)
            shared[6] += 1
            time.sleep(0.5)  # the server notices the closes before anyone else connects


def udp_flood(port, rate, deadline, shared):
    """One source socket: bursts of 3 s every 10 s at `rate` datagrams/s; never reads."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    u.setblocking(False)
    rid = 0
    rnd = random.Random(99)  # kinds drawn at random: the token bucket admits each alike

    def frame(body, total=1):
        return struct.pack("!HHHH", rid & 0xFFFF, 0, total, 0) + body

    while time.monotonic() < deadline:
        end = min(deadline, time.monotonic() + 3)
        next_at = time.monotonic()
        while time.monotonic() < end:
            for _ in range(50):
                rid += 1
                r = rnd.randrange(100)
                if r < 1:
                    d = frame(b"get %s\r\n" % SLOW_KEY)
                elif r < 70:
                    d = frame(b"get soak:k:%d\r\n" % (rid % 500))
                elif r < 80:
                    d = struct.pack("!HHH", rid & 0xFFFF, 0, 1)  # shorter than a header
                elif r < 90:
                    d = frame(b"get soak:k:1\r\n", total=2)  # multi-packet request
                else:
                    d = frame(b"bogus junk\r\n")
                try:
                    u.sendto(d, (HOST, port))
                    shared[7] += 1
                except OSError:
                    pass
            next_at += 50.0 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
        time.sleep(max(0.0, min(7.0, deadline - time.monotonic())))
    u.close()


# ---------------------------------------------------------------------------------------------
# memcslap beside the load (a thread of the main process)


def memcslap_loop(port, args, deadline, lock, res):
    tool = shutil.which("memcslap") or "/usr/bin/memcslap"
    tests = ["set", "get", "mget"]
    i = 0
    while time.monotonic() + args.memcslap_every < deadline:
        time.sleep(args.memcslap_every)
        test = tests[i % len(tests)]
        i += 1
        with lock:  # no churn burst while it connects and runs
            rc, out, err = harness.run_tool(
                [tool, "--servers=%s:%d" % (HOST, port), "--concurrency=2",
                 "--execute-number=%d" % args.execute_number, "--test=%s" % test],
                timeout_s=60)
        res["runs"] += 1
        bad = [ln for ln in (out + "\n" + err).splitlines() if MEMCSLAP_ERROR.search(ln)]
        if rc != 0 or bad or not re.search(r"Time to %s" % test, out):
            res["errors"] += max(1, len(bad))
            if len(res["detail"]) < 5:
                res["detail"].append("memcslap --test=%s rc=%s: %s" % (
                    test, rc, "; ".join(bad[:3]) or out[-200:].strip()))

