"""UDP with memcached's 8-byte frame header (request id, sequence number, total datagrams,
reserved; all big-endian u16). The server runs with -U PORT; requests come from raw sockets.

Recorded from stock memcached 1.6.18 (asserted here):
  * every reply datagram carries the request's id (0 and 0xffff included), reserved 0, and
    seq < total; a datagram is at most 1400 bytes including the header (UDP_MAX_PAYLOAD_SIZE).
  * a 100 KB value comes back as 74 datagrams numbered 0..73 of 74.
  * memcached 1.6 frames each reply part separately: "get a b a" comes back as two datagrams
    that are each "seq 0 of 1". So replies are checked per group (a group runs from seq 0 to
    total-1) and the groups' payloads, concatenated in arrival order, must equal the TCP reply.
  * no reply at all for: a datagram shorter than 8 bytes, total > 1 (multi-packet request),
    total 0, an empty payload, a command line without newline. A non-zero seq or reserved field
    in a request is ignored (the request is served).
  * noreply over UDP sends nothing; UDP and TCP share one store.
"""

import socket
import struct
import time

import harness

MAX_DGRAM = 1400


class Udp:
    def __init__(self, port):
        self.addr = (harness.LOOPBACK, port)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if opt is None:
                continue
            try:
                self.s.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
                break
            except OSError:
                continue

    def send(self, dgram):
        self.s.sendto(dgram, self.addr)

    def collect(self, quiet=0.3, limit=5.0, done=None):
        """Datagrams until `done(datagrams)` is true or `quiet` s of silence (at most limit s)."""
        out = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.s.settimeout(min(quiet, max(0.001, deadline - time.monotonic())))
            try:
                d, _ = self.s.recvfrom(65536)
            except socket.timeout:
                break
            out.append(d)
            if done and done(out):
                break
        return out

    def close(self):
        self.s.close()


def headers(dgrams):
    return [struct.unpack("!HHHH", d[:8]) for d in dgrams if len(d) >= 8]


def reassemble(t, dgrams, req_id, what):
    """Check every header and return the payload (groups of seq 0..total-1 in arrival order)."""
    ok = t.check(all(len(d) >= 8 for d in dgrams), "%s: every datagram has a header" % what)
    hs = headers(dgrams)
    ok &= t.eq(sorted({h[0] for h in hs}), [req_id] if hs else [],
               "%s: reply request id" % what)
    ok &= t.check(all(h[3] == 0 for h in hs), "%s: reserved field is 0" % what,
                  harness.show(hs))
    ok &= t.check(all(len(d) <= MAX_DGRAM for d in dgrams),
                  "%s: datagrams <= %d bytes" % (what, MAX_DGRAM),
                  harness.show(sorted({len(d) for d in dgrams})))
    payload = b""
    i = 0
    groups = 0
    while i < len(dgrams) and ok:
        total = hs[i][2]
        group = dgrams[i:i + total]
        ghs = hs[i:i + total]
        if not t.check(total >= 1 and len(group) == total and
                       all(h[2] == total for h in ghs) and
                       sorted(h[1] for h in ghs) == list(range(total)),
                       "%s: group at datagram %d is seq 0..%d of %d" % (what, i, total - 1, total),
                       harness.show(hs[i:i + 8])):
            return None
        for _, d in sorted(zip([h[1] for h in ghs], group)):
            payload += d[8:]
        i += total
        groups += 1
    return payload if ok else None


def ends_with(term):
    return lambda ds: b"".join(d[8:] for d in ds).endswith(term)


def main():
    args = harness.parse_args(__doc__)
    t = harness.Checker("udp_frame", args.verbose)
    with harness.Server(args.server, udp=True) as srv:
        big = bytes((i * 31 + 7) % 256 for i in range(100 * 1024))
        with srv.connect() as c:
            harness.set_item(c, "big", big, flags=9)
            harness.set_item(c, "a", b"A", flags=1)
            harness.set_item(c, "b", b"bee")
            t.eq(harness.stats(c, b"settings").get("udpport"), str(srv.udp_port).encode(),
                 "stats settings udpport")
        u = Udp(srv.udp_port)
        try:
            t.begin("single get")
            u.send(harness.udp_frame(5, b"get a\r\n"))
            ds = u.collect(done=ends_with(b"END\r\n"))
            t.eq(headers(ds), [(5, 0, 1, 0)], "reply header for a one-datagram reply")
            t.eq(reassemble(t, ds, 5, "get a"), b"VALUE a 1 1\r\nA\r\nEND\r\n", "get a payload")

            t.begin("request ids")
            for rid in (0, 1, 0x1234, 0xFFFF):
                u.send(harness.udp_frame(rid, b"get b\r\n"))
                ds = u.collect(done=ends_with(b"END\r\n"))
                t.eq(reassemble(t, ds, rid, "id %#x" % rid), b"VALUE b 0 3\r\nbee\r\nEND\r\n",
                     "payload for request id %#x" % rid)

            t.begin("100 KB value over UDP")
            expected = b"VALUE big 9 %d\r\n" % len(big) + big + b"\r\nEND\r\n"
            u.send(harness.udp_frame(6, b"get big\r\n"))
            ds = u.collect(done=ends_with(b"END\r\n"))
            hs = headers(ds)
            t.check(len(ds) >= len(expected) // MAX_DGRAM + 1,
                    "100 KB reply needs several datagrams", "got %d" % len(ds))
            t.check(len({h[2] for h in hs}) == 1 and hs and hs[0][2] == len(ds),
                    "one group: total == number of datagrams", harness.show(hs[:4]))
            t.eq([h[1] for h in hs], list(range(len(ds))), "sequence numbers 0..n-1 in order")
            p = reassemble(t, ds, 6, "get big")
            t.check(p == expected, "100 KB value reassembles byte-exact",
                    "len %s vs %d" % (None if p is None else len(p), len(expected)))

            t.begin("multiget over UDP")
            u.send(harness.udp_frame(7, b"get a b missing a big\r\n"))
            ds = u.collect(done=ends_with(b"END\r\n"))
            p = reassemble(t, ds, 7, "multiget")
            t.check(p == b"VALUE a 1 1\r\nA\r\nVALUE b 0 3\r\nbee\r\nVALUE a 1 1\r\nA\r\n"
                    + expected, "multiget payload equals the TCP reply",
                    harness.show(p, 120))
            u.send(harness.udp_frame(8, b"gets a\r\n"))
            ds = u.collect(done=ends_with(b"END\r\n"))
            p = reassemble(t, ds, 8, "gets")
            t.check(p is not None and p.startswith(b"VALUE a 1 1 ") and
                    p.endswith(b"\r\nA\r\nEND\r\n"), "gets over UDP", harness.show(p))

            t.begin("several requests in flight")
            for rid in (100, 101, 102):
                u.send(harness.udp_frame(rid, b"get big\r\n" if rid == 101 else b"get a\r\n"))
            ds = u.collect(quiet=0.3)
            by_id = {}
            for d in ds:
                by_id.setdefault(struct.unpack("!H", d[:2])[0], []).append(d)
            t.eq(sorted(by_id), [100, 101, 102], "a reply for each request id")
            t.eq(reassemble(t, by_id.get(100, []), 100, "in flight 100"),
                 b"VALUE a 1 1\r\nA\r\nEND\r\n", "reply to 100")
            t.check(reassemble(t, by_id.get(101, []), 101, "in flight 101") == expected,
                    "reply to 101 (100 KB) byte-exact")

            t.begin("storage over UDP")
            u.send(harness.udp_frame(9, b"set us 3 0 5\r\nhello\r\n"))
            ds = u.collect(done=ends_with(b"\r\n"))
            t.eq(reassemble(t, ds, 9, "set"), b"STORED\r\n", "set over UDP")
            u.send(harness.udp_frame(10, b"set un 0 0 1 noreply\r\nz\r\n"))
            t.eq(u.collect(quiet=0.4), [], "noreply over UDP sends nothing")
            u.send(harness.udp_frame(11, b"incr nope 1\r\n"))
            t.eq(reassemble(t, u.collect(done=ends_with(b"\r\n")), 11, "incr"), b"NOT_FOUND\r\n",
                 "incr missing over UDP")
            u.send(harness.udp_frame(12, b"bogus\r\n"))
            t.eq(reassemble(t, u.collect(done=ends_with(b"\r\n")), 12, "bogus"), b"ERROR\r\n",
                 "unknown command over UDP")
            with srv.connect() as c:
                t.eq(harness.get_item(c, "us"), (3, b"hello"), "UDP set visible over TCP")
                t.eq(harness.get_item(c, "un"), (0, b"z"), "UDP noreply set visible over TCP")

            t.begin("malformed frames (memcached: silently dropped)")
            u.send(b"\x00\x01\x00")
            t.eq(u.collect(quiet=0.4), [], "datagram shorter than the header: no reply")
            u.send(b"\x00\x02\x00\x00\x00\x01\x00")
            t.eq(u.collect(quiet=0.4), [], "7-byte datagram: no reply")
            u.send(harness.udp_frame(13, b"get a\r\n", total=2))
            t.eq(u.collect(quiet=0.4), [], "total 2 (multi-packet request): no reply")
            u.send(harness.udp_frame(14, b"get a\r\n", total=0))
            t.eq(u.collect(quiet=0.4), [], "total 0: no reply")
            u.send(harness.udp_frame(15, b""))
            t.eq(u.collect(quiet=0.4), [], "header only, empty payload: no reply")
            u.send(harness.udp_frame(16, b"get a\r\n", seq=3))
            t.eq(reassemble(t, u.collect(done=ends_with(b"END\r\n")), 16, "seq 3"),
                 b"VALUE a 1 1\r\nA\r\nEND\r\n", "request with seq 3 is served")
            u.send(harness.udp_frame(17, b"get a\r\n", reserved=5))
            t.eq(reassemble(t, u.collect(done=ends_with(b"END\r\n")), 17, "reserved 5"),
                 b"VALUE a 1 1\r\nA\r\nEND\r\n", "request with reserved 5 is served")
            u.send(bytes(range(256)) * 4)
            u.collect(quiet=0.3)  # binary junk: whatever the reply, the server must survive

            t.begin("still serving")
            u2 = Udp(srv.udp_port)
            u2.send(harness.udp_frame(18, b"get a\r\n"))
            t.eq(reassemble(t, u2.collect(done=ends_with(b"END\r\n")), 18, "after junk"),
                 b"VALUE a 1 1\r\nA\r\nEND\r\n", "fresh UDP socket served after malformed input")
            u2.close()
            with srv.connect() as c:
                t.eq(harness.get_item(c, "big"), (9, big), "TCP still serves the 100 KB item")
        finally:
            u.close()
        srv.check_alive(t)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=60)
