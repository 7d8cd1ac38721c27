"""Bad input on the text protocol changes nothing else: exact error replies (recorded from stock
memcached 1.6.18), no crash, no lost or altered item, no stall of other clients, bounded memory.

Recorded memcached 1.6.18 behaviour asserted here (each on a fresh connection):
  * key of 251+ bytes: "CLIENT_ERROR bad command line format\r\n" for get/gets/gat/delete/
    incr/touch (also when it is one key of a multiget); for set/add/cas/append the data line is
    then read as a command, so "CLIENT_ERROR bad command line format\r\nERROR\r\n".
  * a line of more than 2048 bytes without a newline that is not a get/gets: connection closed.
    "get " + 3000 bytes without newline: connection kept open; when "\r\n" follows the reply is
    "CLIENT_ERROR bad command line format\r\n" (key too long).
  * byte counts -1, 2147483646 (> INT_MAX - 2), 99999999999999999999, 0x1: "CLIENT_ERROR bad
    command line format\r\n" and nothing swallowed; "abc" likewise, the data line then gives
    "ERROR\r\n". Bad flags (abc, -1) and exptime (abc) likewise. A missing byte count or extra
    tokens: "ERROR\r\n". Commands are case-sensitive ("SET" -> "ERROR").
  * a data block not followed by "\r\n": "CLIENT_ERROR bad data chunk\r\n"; exactly <bytes>+2
    bytes were consumed, the rest is parsed as commands (so usually "ERROR\r\n" too); the old
    value of the key is kept.
  * a value over the item size limit: "SERVER_ERROR object too large for cache\r\n" after the
    declared data has been swallowed (nothing is sent before that; a server that replies at once
    produces the same byte stream and is accepted); then the connection works.
  * unknown command, empty line: "ERROR\r\n". A bare "\n" ends a line like "\r\n".
"""

import random
import socket
import time

import harness

ITEM_MAX = 1024 * 1024
MEMORY_MB = 64
RSS_SLACK_MB = 200
CLIENT_ERROR_FMT = b"CLIENT_ERROR bad command line format\r\n"


def exchange(srv, data, quiet=0.3, timeout=5.0):
    """Send data on a new connection; return (reply bytes, closed?)."""
    with srv.connect() as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            return b"", True
        return c.read_all_quiet(quiet, timeout)


def expect_reply(t, srv, data, expected, what):
    """Send data on a new connection; the reply must be exactly `expected`, nothing more, and
    the connection must stay open."""
    with srv.connect() as c:
        c.send(data)
        try:
            out = c.read_exact(len(expected), timeout=3.0)
        except harness.Closed as e:
            t.eq(e.got, expected, what)
            t.fail(what + ": connection stays open")
            return
        except socket.timeout:
            out = c.buf
        extra, closed = c.read_all_quiet(0.05, timeout=1.0)
        t.eq(out + extra, expected, what)
        t.check(not closed, what + ": connection stays open")


def make_items():
    rnd = random.Random(1234)
    items = {}
    for i in range(40):
        n = rnd.choice([0, 1, 10, 100, 1000, 5000, 50000])
        items[b"keep:%d" % i] = (rnd.randrange(2**32), bytes(rnd.randrange(256) for _ in range(n)))
    items[b"keep:big"] = (7, bytes(rnd.randrange(256) for _ in range(300 * 1024)))
    items[b"K" * 250] = (1, b"250-byte key")
    items[b"keep:crlf"] = (0, b"\r\nEND\r\n\x00\r\n")
    return items


def verify_items(t, srv, items, when):
    with srv.connect() as c:
        bad = []
        for k, (flags, val) in items.items():
            got = harness.get_item(c, k)
            if got != (flags, val):
                bad.append("%s: %s" % (harness.show(k, 40),
                                       "missing" if got is None else
                                       "flags %d len %d" % (got[0], len(got[1]))))
        t.eq(bad, [], "all %d stored items intact byte-for-byte %s" % (len(items), when))
        # and one multiget over all of them, to check framing too
        keys = list(items)
        c.send(b"get " + b" ".join(keys) + b"\r\n")
        r = c.read_retrieval(timeout=10)
        exp = b"".join(b"VALUE %s %d %d\r\n%s\r\n" % (k, items[k][0], len(items[k][1]),
                                                    items[k][1]) for k in keys) + b"END\r\n"
        t.check(r == exp, "multiget of all stored items byte-exact %s" % when,
                "len %d vs %d" % (len(r), len(exp)))


def section_long_keys(t, srv):
    t.begin("over-long keys")
    k251 = b"k" * 251
    k300 = b"q" * 300
    for cmd in (b"get " + k251, b"gets " + k251, b"get a " + k251 + b" b", b"delete " + k251,
                b"incr " + k251 + b" 1", b"decr " + k300 + b" 1", b"touch " + k251 + b" 1",
                b"gat 1 " + k251, b"gats 1 " + k300):
        expect_reply(t, srv, cmd + b"\r\n", CLIENT_ERROR_FMT, harness.show(cmd, 30) + "...")
    for cmd in (b"set " + k251 + b" 0 0 1", b"add " + k251 + b" 0 0 1",
                b"append " + k251 + b" 0 0 1", b"cas " + k300 + b" 0 0 1 1"):
        expect_reply(t, srv, cmd + b"\r\nx\r\n", CLIENT_ERROR_FMT + b"ERROR\r\n",
                     harness.show(cmd, 30) + "... with data line")


def section_long_lines(t, srv):
    t.begin("over-long lines")
    for junk in (b"x" * 4096, b"set " + b"k" * 5000, b"delete " + b"\x01" * 3000):
        with srv.connect() as c:
            c.send(junk)
            t.check(c.wait_closed(3.0), "line of %d bytes without newline (%s...) closes the "
                    "connection" % (len(junk), harness.show(junk[:8])))
    with srv.connect() as c:
        c.send(b"get " + b"x" * 3000)
        out, closed = c.read_all_quiet(0.3)
        t.eq((out, closed), (b"", False), "get + 3000 bytes without newline: waits, stays open")
        c.send(b"\r\nget keep:1\r\n")
        r = c.read_until(b"END\r\n")
        t.check(r.startswith(CLIENT_ERROR_FMT + b"VALUE keep:1 "),
                "... then newline: key too long error, next command served", harness.show(r))
    expect_reply(t, srv, b"set " + b"k" * 3000 + b" 0 0 1\r\nx\r\n",
                 CLIENT_ERROR_FMT + b"ERROR\r\n", "3000-byte line with newline, sent at once")


def section_byte_counts(t, srv):
    t.begin("bad byte counts, flags, exptime")
    for n in (b"-1", b"2147483646", b"4294967295", b"99999999999999999999", b"0x1"):
        expect_reply(t, srv, b"set bc 0 0 " + n + b"\r\n", CLIENT_ERROR_FMT,
                     "set with byte count %s" % n.decode())
    for line in (b"set bc 0 0 abc", b"set bc abc 0 1", b"set bc -1 0 1", b"set bc 0 abc 1",
                 b"add bc 0 0 -5", b"cas bc 0 0 1 abc"):
        expect_reply(t, srv, line + b"\r\nx\r\n", CLIENT_ERROR_FMT + b"ERROR\r\n",
                     "%s + data line" % line.decode())
    for line in (b"set bc 0 0", b"set bc 0 0 1 2 3", b"SET bc 0 0 1"):
        expect_reply(t, srv, line + b"\r\nx\r\n", b"ERROR\r\nERROR\r\n",
                     "%s + data line" % line.decode())
    expect_reply(t, srv, b"get bc\r\n", b"END\r\n", "nothing was stored under bc")


def section_data_chunk(t, srv):
    t.begin("data block not ending in \\r\\n")
    expect_reply(t, srv, b"set keep:0 0 0 3\r\nabcde\r\n",
                 b"CLIENT_ERROR bad data chunk\r\nERROR\r\n", "3 declared, 5 sent")
    expect_reply(t, srv, b"set dc 0 0 3\r\nabcd\r\nget dc\r\n",
                 b"CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n", "3 declared, 4 sent")
    expect_reply(t, srv, b"set dc 0 0 3\r\nab\r\n\r\n",
                 b"CLIENT_ERROR bad data chunk\r\nERROR\r\n", "3 declared, 2 sent")
    expect_reply(t, srv, b"set dc 0 0 3\r\nabcXY", b"CLIENT_ERROR bad data chunk\r\n",
                 "3 declared, terminator XY")
    expect_reply(t, srv, b"append keep:1 0 0 2\r\nzzzz\r\n",
                 b"CLIENT_ERROR bad data chunk\r\nERROR\r\n", "append with bad chunk")


def section_too_large(t, srv):
    t.begin("too large values")
    n = ITEM_MAX + 1
    with srv.connect() as c:
        c.send(b"set tl 0 0 %d\r\n" % n + b"z" * (n // 2))
        early, closed = c.read_all_quiet(0.3)
        t.check(not closed, "too large: connection open while the data is still coming")
        # memcached sends the error only after the declared data has been swallowed; sending it
        # at once yields the same byte stream, so either is accepted here (noted in the output).
        if early:
            print("note: server replied %s before the data was complete (memcached waits)"
                  % harness.show(early))
        c.send(b"z" * (n - n // 2) + b"\r\nget keep:2\r\n")
        r = early + c.read_until(b"END\r\n", timeout=10)
        t.check(r.startswith(b"SERVER_ERROR object too large for cache\r\nVALUE keep:2 "),
                "too large: SERVER_ERROR, data swallowed, next command served", harness.show(r))


def section_unknown_and_junk(t, srv):
    t.begin("unknown commands and junk")
    expect_reply(t, srv, b"bogus\r\n", b"ERROR\r\n", "unknown command")
    expect_reply(t, srv, b"bogus with many args 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19"
                 b" 20 21 22 23 24 25 26\r\n", b"ERROR\r\n", "unknown command with 27 tokens")
    expect_reply(t, srv, b"\r\n", b"ERROR\r\n", "empty line")
    expect_reply(t, srv, b"\x00\x01\xff\r\n", b"ERROR\r\n", "NUL and high bytes")
    expect_reply(t, srv, b"get\r\n", b"ERROR\r\n", "get without key")
    out, closed = exchange(srv, b"get keep:3\n")
    t.check(out.startswith(b"VALUE keep:3 ") and out.endswith(b"END\r\n") and not closed,
            "get ended by bare \\n is served", harness.show(out))
    rnd = random.Random(99)
    for i in range(8):
        junk = b"\x00" + bytes(rnd.randrange(256) for _ in range(rnd.choice([100, 1000, 8000])))
        out, closed = exchange(srv, junk, quiet=0.3)
        lines = [ln for ln in out.split(b"\r\n") if ln]
        t.check(all(ln == b"ERROR" or ln.startswith(b"CLIENT_ERROR ") or
                    ln.startswith(b"SERVER_ERROR ") for ln in lines) and out.endswith(b"\r\n")
                or out == b"", "random junk #%d (%d bytes): only error lines" % (i, len(junk)),
                harness.show(out))
    # binary-protocol-looking junk: whatever the reply, the server must keep serving others
    for i in range(4):
        junk = b"\x80" + bytes(rnd.randrange(256) for _ in range(200))
        exchange(srv, junk, quiet=0.2)


def section_stall(t, srv):
    t.begin("half requests stall only their own connection")
    stallers = []
    partial = [b"set stall 0 0 10\r\nabc", b"get keep:", b"set other 0 0 100000\r\n" + b"p" * 5000,
               b"gets ", b"incr keep"]
    for p in partial:
        c = srv.connect()
        c.send(p)
        stallers.append(c)
    try:
        with srv.connect() as c:
            worst = 0.0
            start = time.monotonic()
            for i in range(200):
                t0 = time.monotonic()
                harness.set_item(c, b"live:%d" % (i % 20), b"v%d" % i)
                if harness.get_item(c, b"live:%d" % (i % 20)) != (0, b"v%d" % i):
                    t.fail("live client get %d" % i)
                    break
                worst = max(worst, time.monotonic() - t0)
            total = time.monotonic() - start
            t.check(worst < 0.5, "other client's set+get each < 0.5 s while 5 clients stall",
                    "worst %.3f s" % worst)
            t.check(total < 5.0, "200 set+get < 5 s while 5 clients stall", "%.2f s" % total)
        for p, c in zip(partial, stallers):
            t.eq(c.read_all_quiet(0.05), (b"", False), "staller %s got nothing, still open"
                 % harness.show(p[:12]))
        stallers[0].send(b"defghij\r\nget stall\r\n")
        t.eq(stallers[0].read_until(b"END\r\n"),
             b"STORED\r\nVALUE stall 0 10\r\nabcdefghij\r\nEND\r\n",
             "stalled set completes when the rest arrives")
        stallers[1].send(b"1\r\n")
        r = stallers[1].read_until(b"END\r\n")
        t.check(r.startswith(b"VALUE keep:1 "), "stalled get completes", harness.show(r))
    finally:
        for c in stallers:
            c.close()


def section_huge_then_close(t, srv, slack_mb):
    t.begin("huge declared lengths then close")
    rss0 = harness.rss_kb(srv.pid)
    for i in range(30):
        for n in (900000, 2147483645):
            with srv.connect() as c:
                c.send(b"set huge:%d 0 0 %d\r\n" % (i, n) + b"h" * 60000)
        with srv.connect() as c:
            c.send(b"get " + b"g" * 2000)  # long multiget line, then close
    # many connections open at once, each with a partial 900 KB value, then all close
    conns = []
    try:
        for i in range(40):
            c = srv.connect()
            c.send(b"set part:%d 0 0 900000\r\n" % i + b"p" * 400000)
            conns.append(c)
        time.sleep(0.3)
        rss_peak = harness.rss_kb(srv.pid)
    finally:
        for c in conns:
            c.close()
    time.sleep(0.3)
    rss1 = harness.rss_kb(srv.pid)
    limit = (MEMORY_MB + slack_mb) * 1024
    t.check(rss_peak < limit, "RSS with 40 partial 900 KB values < %d MB (peak %d kB, before %d kB)"
            % (MEMORY_MB + slack_mb, rss_peak, rss0))
    t.check(rss1 < limit, "RSS after the closes < %d MB (%d kB)" % (MEMORY_MB + slack_mb, rss1))
    with srv.connect() as c:
        c.send(b"get huge:0 huge:29 part:0 part:39\r\n")
        t.eq(c.line(), b"END\r\n", "no partial value was stored")


def section_many_errors_pipelined(t, srv):
    t.begin("errors interleaved with good commands in one pipeline")
    req = b""
    exp = b""
    for i in range(100):
        req += b"bogus %d\r\nset pipe:%d 0 0 1\r\n%d\r\nget pipe:%d\r\n" % (i, i, i % 10, i)
        exp += b"ERROR\r\nSTORED\r\nVALUE pipe:%d 0 1\r\n%d\r\nEND\r\n" % (i, i % 10)
    with srv.connect() as c:
        c.send(req)
        got = c.read_exact(len(exp), timeout=10)
        t.eq(got, exp, "100 x (bogus, set, get) pipelined")
        t.eq(c.read_all_quiet(0.1), (b"", False), "nothing more")


def main():
    args = harness.parse_args(__doc__, lambda p: p.add_argument(
        "--rss-slack-mb", type=int, default=RSS_SLACK_MB,
        help="allowed RSS above -m (default %(default)s; more under sanitizers)"))
    t = harness.Checker("bad_input", args.verbose)
    with harness.Server(args.server, memory_mb=MEMORY_MB, item_max=ITEM_MAX) as srv:
        items = make_items()
        t.begin("setup")
        with srv.connect() as c:
            for k, (flags, val) in items.items():
                harness.set_item(c, k, val, flags)
        verify_items(t, srv, items, "before bad input")
        for fn in (section_long_keys, section_long_lines, section_byte_counts,
                   section_data_chunk, section_too_large, section_unknown_and_junk,
                   section_stall):
            t.run_section(fn, t, srv)
        t.run_section(section_huge_then_close, t, srv, args.rss_slack_mb)
        t.run_section(section_many_errors_pipelined, t, srv)
        t.begin("afterwards")
        if srv.check_alive(t, "after all bad input"):
            verify_items(t, srv, items, "after bad input")
            with srv.connect() as c:
                harness.set_item(c, b"after", b"ok")
                t.eq(harness.get_item(c, b"after"), (0, b"ok"), "server still stores and serves")
                st = harness.stats(c)
                t.eq(st.get("curr_items"), str(len(items) + 1 + 20 + 1 + 100).encode(),
                     "curr_items counts only complete stores")
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=120)
