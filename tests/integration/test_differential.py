"""Differential test: the corpus in differential_corpus.py is sent to a fresh stock memcached
(--reference, default /usr/bin/memcached) and to a fresh server under test, both started with the
same flags, and the replies are compared byte for byte after normalising only what may
legitimately differ:
  * cas unique values: mapped to CAS#0, CAS#1, ... in order of first appearance within a case
    (in VALUE lines and in meta "c<n>" tokens), so equal/distinct/changed relations still count;
  * the VERSION string;
  * the contents of stats replies (values, name sets and order differ between implementations):
    a run of STAT lines compares as one "<STAT lines>" entry; the names are checked against a
    core list and the differences are printed for information;
  * the reviewed intended differences (differential_corpus.INTENDED, each with its reason):
    memcached's reply is rewritten to the one Cachet gives on purpose, and each use is printed.
Each case runs on its own connection. After each step a "version" request is sent as a sentinel,
so the reply is complete when the sentinel's VERSION line arrives (steps that leave a line or a
data block unfinished are sent without it and read until quiet). The two servers run the corpus
at the same time in two threads, so the TIMED cases sleep once.

Run memcached against itself to validate the corpus:
    /usr/bin/python3 test_differential.py --server /usr/bin/memcached
--dump prints the reference's normalised replies (the recorded memcached behaviour).
"""

import difflib
import hashlib
import re
import select
import socket
import threading
import time

import harness
from differential_corpus import CASES, INTENDED, JOINED, Raw, Sleep, apply_intended

SENTINEL = b"version\r\n"
STEP_TIMEOUT = 3.0
BUDGET_S = 110.0
FLAGS = dict(memory_mb=64, threads=2, conns=1024, item_max=1024 * 1024)
CORE_STATS = {"pid", "uptime", "time", "version", "curr_connections", "total_connections",
              "cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "get_hits", "get_misses",
              "delete_hits", "delete_misses", "incr_hits", "incr_misses", "decr_hits",
              "decr_misses", "cas_hits", "cas_misses", "cas_badval", "touch_hits",
              "touch_misses", "bytes_read", "bytes_written", "limit_maxbytes", "threads",
              "curr_items", "total_items", "bytes", "evictions", "get_expired", "get_flushed"}
TEMPLATE_RE = re.compile(rb"\{(k\d*|K250|K251|cas(\d+)([+-]\d+)?)\}")


def expand(name, data, cas_seen):
    key = name.encode()

    def sub(m):
        tok = m.group(1)
        if tok == b"k":
            return key
        if tok.startswith(b"k"):
            return key + b"_" + tok[1:]
        if tok == b"K250":
            return (key + b"_").ljust(250, b"L")
        if tok == b"K251":
            return (key + b"_").ljust(251, b"L")
        i = int(m.group(2))
        base = cas_seen[i] if i < len(cas_seen) else 999999999
        return b"%d" % (base + int(m.group(3) or 0))

    return TEMPLATE_RE.sub(sub, data)


class CasMap:
    def __init__(self):
        self.seen = []  # distinct cas values in order of first appearance

    def norm(self, tok):
        v = int(tok)
        if v not in self.seen:
            self.seen.append(v)
        return b"CAS#%d" % self.seen.index(v)


def show_data(d):
    if len(d) <= 120:
        return repr(d)
    return "<%d bytes sha1 %s head %r>" % (len(d), hashlib.sha1(d).hexdigest()[:12], d[:24])


def normalise(reply, casmap, stat_names):
    """Reply bytes -> list of printable entries."""
    out = []
    i = 0
    in_stats = False
    while i < len(reply):
        j = reply.find(b"\r\n", i)
        if j < 0:
            out.append("<partial line %r>" % reply[i:])
            break
        line = reply[i:j]
        i = j + 2
        if line.startswith(b"STAT "):
            parts = line.split(b" ", 2)
            stat_names.add(re.sub(r"^(items:)?\d+:", r"\1N:", parts[1].decode("latin-1")))
            if not in_stats:
                out.append("<STAT lines>")
                in_stats = True
            continue
        in_stats = False
        parts = line.split(b" ")
        data_len = None
        if parts[0] == b"VALUE" and len(parts) >= 4:
            if len(parts) == 5 and parts[4].isdigit():
                parts[4] = casmap.norm(parts[4])
            if parts[3].isdigit():
                data_len = int(parts[3])
        elif parts[0] == b"VERSION":
            parts = [b"VERSION", b"<v>"]
        elif parts[0] in (b"VA", b"HD", b"EN", b"NF", b"NS", b"EX", b"MN", b"OK"):
            for n, p in enumerate(parts[1:], 1):
                if p[:1] == b"c" and p[1:].isdigit():
                    parts[n] = b"c" + casmap.norm(p[1:])
            if parts[0] == b"VA" and len(parts) >= 2 and parts[1].isdigit():
                data_len = int(parts[1])
        out.append(repr(b" ".join(parts))[2:-1])
        if data_len is not None:
            block = reply[i:i + data_len + 2]
            i += data_len + 2
            if block.endswith(b"\r\n") and len(block) == data_len + 2:
                out.append("  data " + show_data(block[:-2]))
            else:
                out.append("  <bad data block %s>" % show_data(block))
    return out


def count_versions(data):
    return (b"\n" + data).count(b"\nversion\r\n") + (b"\n" + data).count(b"\nversion\n")


def recv_within(conn, seconds):
    """Bytes the server sent within `seconds` (b"" when it closed), or None when it sent nothing.
    Waits with select, never with the socket's timeout: the step's writer shares the socket."""
    if not select.select([conn], [], [], max(0.0, seconds))[0]:
        return None
    try:
        return conn.recv(1 << 20)
    except ConnectionResetError:
        return b""


def read_step(conn, n_versions, deadline):
    """Read until n_versions VERSION lines have arrived (then a short tail), EOF or deadline."""
    buf = b""
    while time.monotonic() < deadline:
        lines = buf.split(b"\r\n")
        if buf.endswith(b"\r\n") and sum(1 for ln in lines if ln.startswith(b"VERSION ")) \
                >= n_versions:
            more = recv_within(conn, 0.02)
            if more is None:
                return buf, False, False
            if not more:
                return buf, True, False
            buf += more
            continue
        chunk = recv_within(conn, max(0.001, deadline - time.monotonic()))
        if chunk is None:
            break
        if not chunk:
            return buf, True, False
        buf += chunk
    return buf, False, True


def read_quiet(conn, quiet, deadline):
    buf = b""
    while time.monotonic() < deadline:
        chunk = recv_within(conn, min(quiet, max(0.001, deadline - time.monotonic())))
        if chunk is None:
            return buf, False
        if not chunk:
            return buf, True
        buf += chunk
    return buf, False


class Writer(threading.Thread):
    """Writes one step's bytes beside the reader; finish() waits for it, re-raises what it
    raised and says whether the server had closed the connection."""

    def __init__(self, send, sock, data):
        super().__init__(daemon=True)
        self.send, self.sock, self.data = send, sock, data
        self.error = None
        self.start()

    def run(self):
        try:
            self.send(self.sock, self.data)
        except Exception as e:  # noqa: BLE001 - handed to finish()
            self.error = e

    def finish(self):
        self.join()
        if isinstance(self.error, (BrokenPipeError, ConnectionResetError)):
            return True
        if self.error is not None:
            raise self.error
        return False


def run_case(port, name, steps, stat_names, send=None):
    """Returns a list of (request bytes shown, [normalised reply entries]) per step. `send`
    (sock, bytes) writes a step's bytes (default: at once); the differential fuzzer cuts them
    into partial writes."""
    send = send or (lambda sock, data: sock.sendall(data))
    casmap = CasMap()
    result = []
    sock = socket.create_connection((harness.LOOPBACK, port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    closed = False
    try:
        for step in steps:
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
                continue
            raw = isinstance(step, Raw)
            data = expand(name, step.data if raw else step, casmap.seen)
            shown = show_data(data)
            if closed:
                result.append((shown, ["<not sent: connection closed>"]))
                continue
            deadline = time.monotonic() + STEP_TIMEOUT
            use_sentinel = not raw and data.endswith(b"\n")
            # The step is written while its replies are read, as a client with a deep pipeline
            # must: a server stops reading a connection whose replies are not read (memcached
            # and Cachet both bound the output they hold), so writing a step of megabytes
            # before reading would wait on the socket buffers' sizes.
            writer = Writer(send, sock, data + (SENTINEL if use_sentinel else b""))
            if use_sentinel:
                reply, closed, timed_out = read_step(sock, count_versions(data) + 1, deadline)
            else:
                reply, closed = read_quiet(sock, step.quiet if raw else 0.3, deadline)
                timed_out = False
            if writer.finish():
                result.append((shown, ["<send failed: connection closed>"]))
                closed = True
                continue
            entries = normalise(reply, casmap, stat_names) or ["<no reply>"]
            if timed_out:
                entries.append("<no sentinel reply within %.0f s>" % STEP_TIMEOUT)
            if closed:
                entries.append("<connection closed>")
            result.append((shown, entries))
    finally:
        sock.close()
    return result


def join_steps(result):
    """One step holding every step's reply entries (for cases whose reply timing may differ)."""
    if not result:
        return result
    return [(" + ".join(req for req, _ in result),
             [e for _, entries in result for e in entries if e != "<no reply>"])]


def run_corpus(port, results, stat_names, t0):
    for name, steps in CASES:
        if time.monotonic() - t0 > BUDGET_S:
            results[name] = [("", ["<not run: time budget of %.0f s exceeded>" % BUDGET_S])]
            continue
        try:
            results[name] = run_case(port, name, steps, stat_names.setdefault(name, set()))
        except Exception as e:  # noqa: BLE001 - recorded as a difference
            results[name] = [("", ["<exception %r>" % e])]


def main():
    args = harness.parse_args(__doc__, lambda p: p.add_argument(
        "--dump", action="store_true", help="print the reference's normalised replies"))
    t = harness.Checker("differential_text", args.verbose)
    with harness.Server(args.reference, name="reference memcached", **FLAGS) as ref, \
            harness.Server(args.server, name="server under test", **FLAGS) as sut:
        res_ref, res_sut, names_ref, names_sut = {}, {}, {}, {}
        t0 = time.monotonic()
        th = [threading.Thread(target=run_corpus, args=(ref.port, res_ref, names_ref, t0)),
              threading.Thread(target=run_corpus, args=(sut.port, res_sut, names_sut, t0))]
        for x in th:
            x.start()
        for x in th:
            x.join(BUDGET_S + 30)
        t.check(not any(x.is_alive() for x in th), "corpus finished in time")
        print("corpus: %d cases in %.1f s" % (len(CASES), time.monotonic() - t0), flush=True)
        mismatched = 0
        used = set()
        for name, _ in CASES:
            a, b = res_ref.get(name), res_sut.get(name)
            if name in JOINED:
                a, b = join_steps(a), join_steps(b)
            if not harness.is_memcached(args.server):
                a = [(req, apply_intended(entries, used)) for req, entries in a or []]
            if args.dump:
                print("== %s" % name)
                for req, entries in a or []:
                    print("  >> %s" % req)
                    for e in entries:
                        print("  << %s" % e)
            if a == b:
                t.check(True, "case %s" % name)
                continue
            mismatched += 1
            lines = []
            for n in range(max(len(a or []), len(b or []))):
                sa = a[n] if a and n < len(a) else ("", [])
                sb = b[n] if b and n < len(b) else ("", [])
                if sa == sb:
                    continue
                lines.append("step %d request: %s" % (n, sa[0] or sb[0]))
                lines += ["  " + d for d in difflib.unified_diff(
                    sa[1], sb[1], "memcached", "server", lineterm="", n=2)][2:]
            t.fail("case %s: replies differ from memcached" % name, "\n".join(lines))
        print("%d of %d cases differ" % (mismatched, len(CASES)), flush=True)
        for d in INTENDED:
            if d.name in used:
                print("intended difference %s: memcached %r, Cachet %r: %s"
                      % (d.name, d.memcached, d.cachet, d.why), flush=True)

        t.begin("stats names")
        for which in ("stats", "stats_settings", "stats_items_slabs"):
            ra, rb = names_ref.get(which, set()), names_sut.get(which, set())
            if ra != rb:
                print("info: %s names only in memcached: %s" % (which, sorted(ra - rb)))
                print("info: %s names only in server: %s" % (which, sorted(rb - ra)))
        missing = sorted(CORE_STATS - names_sut.get("stats", set()))
        t.eq(missing, [], "core stats names present in the server's `stats`")
        ref.check_alive(t)
        sut.check_alive(t)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=170)
