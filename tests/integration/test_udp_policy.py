"""The UDP policy on the kernel path (the DPDK path's is checked in test_dpdk_tap.py): the same
frame check and drop counters as DPDK, a per-source rate (--udp-src-rate) and a reply-size
bound (--udp-reply-max) that hold however large the value a small spoofable request names.

  * frames memcached drops (shorter than the header, header only, total != 1) get no reply and
    are counted in `stats` as udp_drop_frame_short / udp_drop_frame_multipart;
  * a 20-byte `get` of a 100 KB value sends at most --udp-reply-max bytes back (the rest counted
    as udp_drop_reply_cut), where memcached would send 74 datagrams;
  * 100 datagrams from one source at --udp-src-rate 1 get at most the bucket's burst (32) plus
    one per second elapsed answered; the rest are counted as udp_drop_rate_limited.
Every wait is for a counter, with a generous overall timeout.
"""

import socket
import time

import harness

REPLY_MAX = 4000
BURST = 32  # --udp-src-rate 1: a tenth of a second's worth (0) + 32


def stat(srv, name):
    with srv.connect() as c:
        return int(harness.stats(c).get(name, b"0"))


def wait_stat(srv, name, at_least, timeout=20.0):
    deadline = time.monotonic() + timeout
    v = stat(srv, name)
    while v < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
        v = stat(srv, name)
    return v


def drain(sock, quiet=0.2):
    """Everything already sent to sock (the server has finished: a counter said so)."""
    out = []
    sock.settimeout(quiet)
    while True:
        try:
            out.append(sock.recv(65536))
        except socket.timeout:
            return out


def frames(t, srv):
    t.begin("frame check and its counters")
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    short0, multi0 = stat(srv, "udp_drop_frame_short"), stat(srv, "udp_drop_frame_multipart")
    for d in (b"\x00\x01\x00", b"\x00\x02\x00\x00\x00\x01\x00", harness.udp_frame(3, b""),
              harness.udp_frame(4, b"get a\r\n", total=2),
              harness.udp_frame(5, b"get a\r\n", total=0)):
        u.sendto(d, (harness.LOOPBACK, srv.udp_port))
    t.eq(wait_stat(srv, "udp_drop_frame_short", short0 + 3) - short0, 3,
         "short and header-only datagrams counted as frame_short")
    t.eq(wait_stat(srv, "udp_drop_frame_multipart", multi0 + 2) - multi0, 2,
         "total 2 and total 0 counted as frame_multipart")
    t.eq(drain(u), [], "none of them answered")
    u.sendto(harness.udp_frame(6, b"get a\r\n", reserved=9), (harness.LOOPBACK, srv.udp_port))
    u.settimeout(5)
    t.eq(u.recv(65536)[8:], b"VALUE a 0 1\r\nA\r\nEND\r\n", "reserved field ignored: served")
    u.close()


def amplification(t, srv, big):
    t.begin("reply bound: a small get of a large value")
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req = harness.udp_frame(7, b"get big\r\n")
    cut0, out0 = stat(srv, "udp_drop_reply_cut"), stat(srv, "udp_datagrams_out")
    u.sendto(req, (harness.LOOPBACK, srv.udp_port))
    whole = -(-(len(big) + 40) // 1392)  # the datagrams the whole reply needs
    cut = wait_stat(srv, "udp_drop_reply_cut", cut0 + 1) - cut0
    got = drain(u)
    sent = sum(len(d) for d in got)
    t.check(len(req) <= 20, "the request is %d bytes" % len(req))
    t.check(0 < sent <= REPLY_MAX, "%d reply bytes reached the source (bound %d)" % (sent, REPLY_MAX))
    t.eq(len(got), REPLY_MAX // 1400, "the reply's first datagrams, none after the cut")
    t.eq(cut + len(got), whole, "every datagram past the bound counted as reply_cut")
    t.eq(stat(srv, "udp_datagrams_out") - out0, len(got), "udp_datagrams_out counts the sent ones")
    u.close()


def rate(t, srv):
    t.begin("per-source rate")
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    in0, lim0 = stat(srv, "udp_datagrams_in"), stat(srv, "udp_drop_rate_limited")
    start = time.monotonic()
    n = 100
    for i in range(n):
        u.sendto(harness.udp_frame(i, b"get a\r\n"), (harness.LOOPBACK, srv.udp_port))
    t.eq(wait_stat(srv, "udp_datagrams_in", in0 + n) - in0, n, "every datagram reached cachetd")
    elapsed = time.monotonic() - start
    limited = stat(srv, "udp_drop_rate_limited") - lim0
    answered = len(drain(u))
    allowed = BURST + int(elapsed) + 1  # the burst, then one token per second
    t.check(answered <= allowed, "%d of %d answered in %.1f s (at most %d)"
            % (answered, n, elapsed, allowed))
    t.eq(answered + limited, n, "the rest counted as udp_drop_rate_limited")
    u.close()


def main():
    args = harness.parse_args(__doc__)
    t = harness.Checker("udp_policy", args.verbose)
    if harness.is_memcached(args.server):
        print("SKIP: Cachet's UDP policy (memcached has none)")
        return 77
    big = bytes((i * 13 + 5) % 256 for i in range(100 * 1024))
    # One worker, so that one source meets one bucket whichever socket the kernel picks.
    with harness.Server(args.server, udp=True, threads=1,
                        extra=["--udp-reply-max", str(REPLY_MAX), "--udp-src-rate", "1"]) as srv:
        with srv.connect() as c:
            harness.set_item(c, "big", big)
            harness.set_item(c, "a", b"A")
        t.run_section(frames, t, srv)
        t.run_section(amplification, t, srv, big)
        t.run_section(rate, t, srv)
        srv.check_alive(t)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=90)
