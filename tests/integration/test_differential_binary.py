"""Binary protocol differential test: a corpus of binary requests (every opcode memcached 1.6.18
handles, quiet forms, cas in the header, SASL with SASL off, unknown opcodes, malformed and
oversized packets) is sent to a fresh stock memcached (--reference, default /usr/bin/memcached)
and to a fresh server under test, and the response packets are compared byte for byte after
normalising only what may legitimately differ:
  * cas values: mapped to CAS#0, CAS#1, ... in order of first appearance within a case;
  * the VERSION body;
  * the stat packets of "stats", "stats settings*", "stats items" and "stats slabs" (names,
    values and slab geometry differ): a run of them compares as one "<stats>" entry.
Each case runs on its own connection. A step is followed by a NOOP sentinel, so its responses
are complete when the sentinel's answer arrives; steps that close the connection are read until
EOF, and steps whose swallow eats what follows are read until quiet.

Run memcached against itself to validate the corpus:
    /usr/bin/python3 test_differential_binary.py --server /usr/bin/memcached
"""

import socket
import struct
import time

import harness

SENTINEL_OPAQUE = 0x5E471E1
STEP_TIMEOUT = 3.0
QUIET_S = 0.4
FLAGS = dict(memory_mb=64, threads=2, conns=1024, item_max=1024 * 1024)
STATS_GROUPS_NORMALISED = (b"", b"items", b"slabs")


def pkt(op, key=b"", extras=b"", value=b"", cas=0, opaque=0, magic=0x80, keylen=None,
        extlen=None, bodylen=None):
    body = len(extras) + len(key) + len(value) if bodylen is None else bodylen
    return struct.pack("!BBHBBHIIQ", magic, op, len(key) if keylen is None else keylen,
                       len(extras) if extlen is None else extlen, 0, 0, body, opaque,
                       cas) + extras + key + value


def sx(flags=0, exp=0):
    return struct.pack("!II", flags, exp)


def ix(delta, initial, exp):
    return struct.pack("!QQI", delta, initial, exp)


def ex(exp):
    return struct.pack("!I", exp)


SENTINEL = pkt(0x0A, opaque=SENTINEL_OPAQUE)


class Close(bytes):
    """A step after which the server closes the connection."""


class Quiet(bytes):
    """A step whose swallow would eat the sentinel: read until quiet."""


def cas_of(i, delta=0):
    """A step template using the i-th cas seen in this case (plus delta)."""
    return lambda seen: seen[i] + delta if i < len(seen) else 999999999


BIG = 1024 * 1024 + 10
CASES = [
    ("get family", [pkt(0x01, b"foo", sx(5), b"bar", opaque=0x12345678),
                    pkt(0x00, b"foo", opaque=7) + pkt(0x0C, b"foo", opaque=7),
                    pkt(0x00, b"nokey", opaque=7) + pkt(0x0C, b"nokey", opaque=7),
                    pkt(0x09, b"nokey") + pkt(0x09, b"foo") + pkt(0x0D, b"nokey") +
                    pkt(0x0D, b"foo"),
                    pkt(0x01, b"e", sx(0xFFFFFFFE, 0)) + pkt(0x00, b"e")]),
    ("add replace", [pkt(0x01, b"a", sx(), b"1") + pkt(0x02, b"a", sx(), b"2") +
                     pkt(0x02, b"n", sx(), b"2") + pkt(0x03, b"zz", sx(), b"3"),
                     pkt(0x12, b"a", sx(), b"1") + pkt(0x11, b"a", sx(), b"2") +
                     pkt(0x13, b"zz", sx(), b"3") + pkt(0x13, b"a", sx(), b"4") +
                     pkt(0x00, b"a")]),
    ("cas", [pkt(0x01, b"a", sx(), b"1"),
             lambda s: pkt(0x01, b"a", sx(), b"x", cas=cas_of(0, 1000)(s)),
             lambda s: pkt(0x01, b"a", sx(), b"y", cas=cas_of(0)(s)),
             pkt(0x01, b"missing", sx(), b"y", cas=5) + pkt(0x03, b"missing", sx(), b"y", cas=5),
             lambda s: pkt(0x02, b"a", sx(), b"z", cas=cas_of(1)(s)) + pkt(0x00, b"a")]),
    ("delete", [pkt(0x01, b"a", sx(), b"1"),
                lambda s: pkt(0x04, b"a", cas=cas_of(0, 1)(s)),
                lambda s: pkt(0x04, b"a", cas=cas_of(0)(s)) + pkt(0x04, b"a"),
                pkt(0x04, b"a", cas=77),
                pkt(0x11, b"d", sx(), b"1") + pkt(0x14, b"d") + pkt(0x14, b"d")]),
    ("incr decr", [pkt(0x05, b"c", ix(1, 10, 0)) + pkt(0x05, b"c", ix(5, 10, 0)) +
                   pkt(0x06, b"c", ix(100, 10, 0)) + pkt(0x00, b"c"),
                   pkt(0x05, b"c2", ix(1, 10, 0xFFFFFFFF)) + pkt(0x06, b"c2", ix(1, 1, 0xFFFFFFFF)),
                   pkt(0x15, b"c", ix(1, 10, 0)) + pkt(0x16, b"c", ix(1, 10, 0)) +
                   pkt(0x15, b"cq", ix(1, 10, 0xFFFFFFFF)) + pkt(0x15, b"cr", ix(1, 7, 0)),
                   pkt(0x01, b"nn", sx(), b"bar") + pkt(0x05, b"nn", ix(1, 10, 0)),
                   pkt(0x01, b"big", sx(), b"18446744073709551615") +
                   pkt(0x05, b"big", ix(2, 0, 0)) + pkt(0x00, b"big"),
                   pkt(0x05, b"c", ix(1, 10, 0), cas=1) + pkt(0x00, b"c"),
                   lambda s: pkt(0x05, b"c", ix(9, 10, 0), cas=cas_of(len(s) - 1)(s))]),
    ("append prepend", [pkt(0x01, b"ap", sx(3), b"mid") + pkt(0x0E, b"ap", value=b"END") +
                        pkt(0x0F, b"ap", value=b"BEG") + pkt(0x00, b"ap"),
                        pkt(0x0E, b"no", value=b"x") + pkt(0x0F, b"no", value=b"x"),
                        pkt(0x19, b"ap", value=b"1") + pkt(0x1A, b"ap", value=b"0") +
                        pkt(0x19, b"no", value=b"x") + pkt(0x00, b"ap"),
                        lambda s: pkt(0x0E, b"ap", value=b"C", cas=cas_of(len(s) - 1, 1)(s)),
                        lambda s: pkt(0x0E, b"ap", value=b"D", cas=cas_of(len(s) - 1)(s)) +
                        pkt(0x00, b"ap"),
                        pkt(0x0E, b"no", value=b"C", cas=5)]),
    ("touch gat", [pkt(0x01, b"t", sx(7), b"val"),
                   pkt(0x1C, b"t", ex(100), opaque=9) + pkt(0x1C, b"no", ex(100)),
                   pkt(0x1D, b"t", ex(100)) + pkt(0x23, b"t", ex(100)) +
                   pkt(0x1D, b"no", ex(100)) + pkt(0x23, b"no", ex(100)),
                   pkt(0x1E, b"t", ex(100)) + pkt(0x24, b"t", ex(100)) +
                   pkt(0x1E, b"no", ex(100)) + pkt(0x24, b"no", ex(100)),
                   pkt(0x1C, b"t", ex(0), bodylen=5 + 24) + pkt(0x0A, opaque=3)]),
    ("flush noop version", [pkt(0x01, b"a", sx(), b"1") + pkt(0x08) + pkt(0x00, b"a"),
                            pkt(0x08, extras=ex(0)) + pkt(0x18) + pkt(0x18, extras=ex(0)),
                            pkt(0x0A, opaque=3) + pkt(0x0B, opaque=4)]),
    ("quit", [Close(pkt(0x07, opaque=5) + pkt(0x0A))]),
    ("quitq", [Close(pkt(0x17, opaque=5) + pkt(0x0A))]),
    ("unknown and sasl", [pkt(0x50) + pkt(0x20) + pkt(0x21, b"PLAIN", value=b"xxxx") +
                          pkt(0x22, b"PLAIN", value=b"xxxx")]),
    ("verbosity swallows like memcached", [Quiet(pkt(0x1B, extras=ex(1)) + pkt(0x0A))]),
    ("unknown with key", [Quiet(pkt(0x50, b"abc") + pkt(0x0A))]),
    ("too large", [pkt(0x01, b"big", sx(), b"old") +
                   pkt(0x02, b"big", sx(), b"x" * BIG) + pkt(0x00, b"big"),
                   pkt(0x0E, b"big", value=b"x" * BIG) + pkt(0x00, b"big"),
                   pkt(0x11, b"big", sx(), b"x" * BIG) + pkt(0x00, b"big"),
                   pkt(0x01, b"big", sx(), b"x" * (1024 * 1000)) +
                   pkt(0x0E, b"big", value=b"x" * (1024 * 100)),
                   pkt(0x01, b"v", sx(), b"v" * 100000) + pkt(0x00, b"v")]),
    ("stats", [pkt(0x10, opaque=77), pkt(0x10, b"settings"), pkt(0x10, b"items"),
               pkt(0x10, b"slabs"), pkt(0x10, b"sizes"), pkt(0x10, b"reset"),
               pkt(0x10, b"resetXYZ"), pkt(0x10, b"detail dump"), pkt(0x10, b"detail on"),
               pkt(0x10, b"detail off"), pkt(0x10, b"detail xx"), pkt(0x10, b"bogus"),
               pkt(0x10, b"conns"), pkt(0x10, b"itemsX"), pkt(0x10, b"settingsXX"),
               pkt(0x10, b"sizes", bodylen=5 + 24) + pkt(0x0A, opaque=9)]),
]
for name, bad in [
        ("get extras", pkt(0x00, b"k", b"1234")), ("get no key", pkt(0x00)),
        ("set no key", pkt(0x01, b"", sx(), b"v")), ("set ext 4", pkt(0x01, b"k", ex(0), b"v")),
        ("delete value", pkt(0x04, b"k", value=b"v")), ("incr ext 8", pkt(0x05, b"k", b"x" * 8)),
        ("stat extras", pkt(0x10, extras=b"xxxx")), ("quit body", pkt(0x07, b"k")),
        ("version body", pkt(0x0B, b"k")), ("noop extras", pkt(0x0A, extras=b"1234")),
        ("flush ext 2", pkt(0x08, extras=b"12")), ("touch no extras", pkt(0x1C, b"t")),
        ("append extras", pkt(0x0E, b"ap", b"1234", b"C")), ("sasl list key", pkt(0x20, b"ab")),
        ("sasl auth no key", pkt(0x21, value=b"xxxx")), ("key 251", pkt(0x00, b"k" * 251)),
        ("set key 251", pkt(0x01, b"k" * 251, sx(), b"v")),
        ("body < key", pkt(0x00, b"foo", bodylen=2)),
        ("body < ext+key", pkt(0x01, b"foo", sx(), bodylen=10)),
        ("key 20000", pkt(0x00, b"k" * 20000)),
        ("wrong magic after noop", pkt(0x0A, opaque=1) + pkt(0x0A, magic=0x81)),
        ("text after binary", pkt(0x0A, opaque=1) + b"get foo\r\n" + b"x" * 20)]:
    CASES.append(("closes: " + name, [pkt(0x0A, opaque=2), Close(bad + pkt(0x0A))]))


def read_step(conn, mode):
    """Bytes of one step's responses, and whether the server closed the connection."""
    deadline = time.monotonic() + STEP_TIMEOUT
    if mode is Close:
        data, closed = conn.read_all_quiet(quiet=STEP_TIMEOUT, timeout=STEP_TIMEOUT)
        return data, closed
    if mode is Quiet:
        return conn.read_all_quiet(quiet=QUIET_S, timeout=STEP_TIMEOUT)
    data = b""
    while True:
        for p in packets(data):
            if p[1] == 0x0A and p[7] == SENTINEL_OPAQUE:
                return data, False
        try:
            conn._fill(deadline)
        except harness.Closed as e:
            return data + e.got, True
        data, conn.buf = data + conn.buf, b""


def packets(data):
    """(magic, op, status, extras, key, value, cas, opaque) tuples of complete packets."""
    out = []
    while len(data) >= 24:
        magic, op, kl, el, _dt, st, bl, opq, cas = struct.unpack("!BBHBBHIIQ", data[:24])
        if len(data) < 24 + bl:
            break
        body = data[24:24 + bl]
        out.append((magic, op, st, body[:el], body[el:el + kl], body[el + kl:], cas, opq))
        data = data[24 + bl:]
    if data:
        out.append(("partial", data))
    return out


def normalise(data, seen, stat_group):
    out = []
    for p in packets(data):
        if p[0] == "partial":
            out.append(p)
            continue
        magic, op, st, ext, key, val, cas, opq = p
        if cas and cas not in seen:
            seen.append(cas)
        ncas = "CAS#%d" % seen.index(cas) if cas else 0
        if op == 0x0B and st == 0:
            val = b"<version>"
        if op == 0x10 and st == 0 and key and (stat_group in STATS_GROUPS_NORMALISED or
                                               stat_group.startswith(b"settings")):
            if out and out[-1] == "<stats>":
                continue
            out.append("<stats>")
            continue
        out.append((magic, op, st, ext, key, val if len(val) < 200 else (len(val), val[:16]),
                    ncas, opq))
    return out


def run_case(port, steps):
    seen, result = [], []
    with harness.Conn(port, timeout=STEP_TIMEOUT) as conn:
        for step in steps:
            data = step(seen) if callable(step) else step
            mode = type(step) if isinstance(step, (Close, Quiet)) else None
            group = data[24:24 + struct.unpack("!H", data[2:4])[0]] if data[1] == 0x10 else None
            conn.send(data if mode else data + SENTINEL)
            got, closed = read_step(conn, mode)
            result.append((normalise(got, seen, group), closed))
            if closed:
                break
    return result


def main():
    args = harness.parse_args(__doc__)
    t = harness.Checker("differential_binary", args.verbose)
    with harness.Server(args.reference, name="reference memcached", **FLAGS) as ref, \
            harness.Server(args.server, **FLAGS) as srv:
        for name, steps in CASES:
            t.begin(name)
            want = run_case(ref.port, steps)
            got = run_case(srv.port, steps)
            for i, (w, g) in enumerate(zip(want, got)):
                t.eq(g, w, "step %d responses and close" % i)
            t.eq(len(got), len(want), "steps run before a close")
        srv.check_alive(t)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=110)
