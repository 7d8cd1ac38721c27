"""cachetd's DPDK dataplane on a net_tap device, never touching a PCI device (--no-pci):
cachetd runs in a network namespace of its own; the tap it creates is moved into a second
namespace that plays the client host. Through it: ARP resolves, ICMP echo answers, memcache over
UDP works (set, get, multiget, delete, incr, stats), a 100 KB value comes back split into
datagrams and reassembles byte-exact, and every kind of malformed frame is dropped and counted
by reason while the dataplane keeps answering and the items stay intact. With
--exception-path, a second tap carries TCP to the kernel, where cachetd's kernel path serves it
on the same address. Runs with hugepages when they can be had (--huge), else --no-huge. With
--upgrade, a second cachetd takes over (--takeover): the first stops polling and closes its
port, the second opens it; the items written before are served by the second, and the port
hand-over gap it logs is printed.
"""

import os
import random
import socket
import struct
import tempfile
import time

import harness
import lease_dialogue as ld
import hugepages
import netns

CACHET_IP = "10.211.0.2"
CLIENT_IP = "10.211.0.1"
UDP_PORT = 11311
REPLY_MAX = 120000  # --udp-reply-max: the 100 KB value fits, twice does not


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def ipv4(src, dst, proto, payload, frag=0x4000, ident=1, bad_csum=False, total=None):
    total = 20 + len(payload) if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident, frag, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    c = csum(h) ^ (0x5a5a if bad_csum else 0)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def udp(src, dst, sport, dport, payload, length=None, bad_csum=False):
    length = 8 + len(payload) if length is None else length
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, 8 + len(payload))
    h = struct.pack("!HHHH", sport, dport, length, 0)
    c = csum(pseudo + h + payload) ^ (0x1111 if bad_csum else 0)
    return struct.pack("!HHHH", sport, dport, length, c or 0xffff) + payload


class Client:
    """memcache over UDP with memcached's frame header, from the client namespace."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(2.0)
        self.rid = random.randrange(1, 60000)

    def request(self, payload):
        self.rid = (self.rid + 1) & 0xffff
        self.s.sendto(harness.udp_frame(self.rid, payload), (CACHET_IP, UDP_PORT))
        parts, total = {}, None
        while total is None or len(parts) < total:
            data, _ = self.s.recvfrom(65536)
            rid, seq, tot, _ = struct.unpack("!HHHH", data[:8])
            if rid != self.rid:
                continue
            total = tot
            parts[seq] = data[8:]
        return b"".join(parts[i] for i in range(total))

    def try_request(self, payload):
        try:
            return self.request(payload)
        except socket.timeout:
            return None


def udp_stats(cl, timeout=60.0):
    """stats over UDP; a lost datagram (a busy machine) is asked again, up to `timeout`."""
    deadline = time.monotonic() + timeout
    reply = cl.try_request(b"stats\r\n")
    while reply is None:
        if time.monotonic() > deadline:
            raise TimeoutError("no complete stats reply over UDP in %.0f s" % timeout)
        reply = cl.try_request(b"stats\r\n")
    out = {}
    for line in reply.split(b"\r\n"):
        p = line.split()
        if len(p) == 3 and p[0] == b"STAT":
            out[p[1].decode()] = p[2].decode()
    return out


def delta(before, after, name):
    return int(after.get(name, 0)) - int(before.get(name, 0))


def wait_counts(cl, before, want, timeout=20.0):
    """stats once every counter in `want` moved by at least its figure (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        st = udp_stats(cl)
        d = drops(st)
        d0 = drops(before)
        moved = all((d.get(k[5:], 0) - d0.get(k[5:], 0) if k.startswith("drop_")
                     else delta(before, st, k)) >= n for k, n in want.items())
        if moved or time.monotonic() > deadline:
            return st
        time.sleep(0.05)


def drops(st):
    total = {}
    for k, v in st.items():
        if k.startswith("dpdk:") and ":drop_" in k:
            reason = k.split(":drop_")[1]
            total[reason] = total.get(reason, 0) + int(v)
    return total


def icmp_echo(t):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(2.0)
    body = b"cachet-ping" * 4
    hdr = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1)
    pkt = hdr[:2] + struct.pack("!H", csum(hdr + body)) + hdr[4:] + body
    s.sendto(pkt, (CACHET_IP, 0))
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            data, addr = s.recvfrom(2048)
        except socket.timeout:
            break
        icmp = data[(data[0] & 0xf) * 4:]
        if addr[0] == CACHET_IP and icmp[0] == 0 and icmp[8:] == body:
            t.check(csum(icmp) == 0, "ICMP echo reply checksum valid")
            return True
    return False


def run_checks(t, args, srv_ns, cli_ns, tap, exception):
    with netns.Inside(cli_ns):
        cl = Client()
        t.begin("ICMP and ARP")
        t.check(icmp_echo(t), "ICMP echo to %s answered" % CACHET_IP)
        neigh = netns.ip("neigh", "show", CACHET_IP, ns=cli_ns)
        t.check("lladdr" in neigh, "ARP resolved %s" % CACHET_IP, neigh)

        t.begin("memcache over UDP")
        t.eq(cl.request(b"set k1 5 0 5\r\nhello\r\n"), b"STORED\r\n", "set")
        t.eq(cl.request(b"get k1\r\n"), b"VALUE k1 5 5\r\nhello\r\nEND\r\n", "get")
        cl.request(b"set k2 0 0 3\r\nabc\r\n")
        t.eq(cl.request(b"get k1 k2 nope\r\n"),
             b"VALUE k1 5 5\r\nhello\r\nVALUE k2 0 3\r\nabc\r\nEND\r\n", "multiget")
        cl.request(b"set n 0 0 2\r\n41\r\n")
        t.eq(cl.request(b"incr n 1\r\n"), b"42\r\n", "incr")
        t.eq(cl.request(b"delete k2\r\n"), b"DELETED\r\n", "delete")
        t.eq(cl.request(b"get k2\r\n"), b"END\r\n", "get after delete")

        # mcrouter's lease dialect and hold-off over the bypass path, byte for byte.
        ld.run(t, lambda data, term: cl.request(data), b"dpdk:")

        t.begin("100 KB value split into datagrams")
        big = bytes(random.Random(7).randrange(256) for _ in range(100 * 1024))
        t.eq(cl.request(b"set big 0 0 0\r\n\r\n"), b"STORED\r\n", "empty start")
        for off in range(0, len(big), 1200):  # each append fits one request datagram
            piece = big[off:off + 1200]
            r = cl.request(b"append big 0 0 %d\r\n" % len(piece) + piece + b"\r\n")
            if r != b"STORED\r\n":
                t.fail("append at %d" % off, harness.show(r))
                break
        got = cl.request(b"get big\r\n")
        t.eq(got, b"VALUE big 0 %d\r\n" % len(big) + big + b"\r\nEND\r\n",
             "100 KB reassembled byte-exact")

        t.begin("malformed frames are dropped and counted")
        before = udp_stats(cl)
        mac_c = netns.mac_of(cli_ns, tap)
        neigh = netns.ip("neigh", "show", CACHET_IP, ns=cli_ns).split()
        mac_s = bytes.fromhex(neigh[neigh.index("lladdr") + 1].replace(":", ""))
        eth = lambda typ: mac_s + mac_c + struct.pack("!H", typ)
        good = harness.udp_frame(1, b"get k1\r\n")
        u = lambda payload, **kw: udp(CLIENT_IP, CACHET_IP, 40000, UDP_PORT, payload, **kw)
        frames = {
            "runt": eth(0x0800) + b"\x45\x00\x00",  # IPv4 cut inside its header
            "ethertype": eth(0x86dd) + b"\0" * 60,
            "ip_checksum": eth(0x0800) + ipv4(CLIENT_IP, CACHET_IP, 17, u(good), bad_csum=True),
            "ip_fragment": eth(0x0800) + ipv4(CLIENT_IP, CACHET_IP, 17, u(good), frag=0x2000),
            "ip_header": eth(0x0800) + ipv4(CLIENT_IP, CACHET_IP, 17, u(good), total=2000),
            "udp_length": eth(0x0800) + ipv4(CLIENT_IP, CACHET_IP, 17, u(good, length=900)),
            "udp_checksum": eth(0x0800) + ipv4(CLIENT_IP, CACHET_IP, 17, u(good, bad_csum=True)),
        }
        # The dataplane's frame check, the same on both paths (memcached's rules).
        udp_frames = {
            "frame_multipart": u(harness.udp_frame(1, b"get k1\r\n", total=2)),
            "frame_short": u(harness.udp_frame(1, b"")),
        }
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        raw.bind((tap, 0))
        for name, f in frames.items():
            for _ in range(3):
                raw.send(f)
        for f in udp_frames.values():
            for _ in range(3):
                raw.send(eth(0x0800) + ipv4(CLIENT_IP, CACHET_IP, 17, f))
        # A flood from one (spoofed) source: over --dpdk-src-rate, dropped.
        flood = eth(0x0800) + ipv4("10.211.0.77", CACHET_IP, 17,
                                   udp("10.211.0.77", CACHET_IP, 40001, UDP_PORT, good))
        for _ in range(args.flood):
            raw.send(flood)
        # Every frame sent is counted somewhere: wait for the counts, not for a time.
        want = {"drop_" + n: 3 for n in frames}
        want.update({"udp_drop_" + n: 3 for n in udp_frames})
        after = wait_counts(cl, before, want)
        d0, d1 = drops(before), drops(after)
        for name in frames:
            t.check(d1.get(name, 0) - d0.get(name, 0) >= 3, "drop_%s counted" % name,
                    "before %s after %s" % (d0.get(name), d1.get(name)))
        for name in udp_frames:
            t.eq(delta(before, after, "udp_drop_" + name), 3, "udp_drop_%s counted" % name)
        rid = (cl.rid + 7) & 0xffff
        cl.s.sendto(harness.udp_frame(rid, b"get k1\r\n", reserved=1), (CACHET_IP, UDP_PORT))
        data, _ = cl.s.recvfrom(65536)
        t.eq(data[8:], b"VALUE k1 5 5\r\nhello\r\nEND\r\n", "reserved != 0 ignored: served")
        after = wait_counts(cl, before, {"dpdk:lcore0:datagrams": args.flood})
        limited = delta(before, after, "udp_drop_rate_limited")
        t.check(limited > 0 and limited < args.flood, "flood from one source rate limited",
                "udp_drop_rate_limited moved by %d of %d" % (limited, args.flood))

        t.begin("reply bound: a spoofed small get of a large value")
        # The victim: a socket on the client host whose address the request claims.
        victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        victim.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        victim.bind((CLIENT_IP, 40002))
        before = udp_stats(cl)
        spoofed = harness.udp_frame(9, b"get big big\r\n")
        raw.send(eth(0x0800) + ipv4(CLIENT_IP, CACHET_IP, 17,
                                    udp(CLIENT_IP, CACHET_IP, 40002, UDP_PORT, spoofed)))
        after = wait_counts(cl, before, {"udp_drop_reply_cut": 1})
        got = []
        victim.settimeout(0.3)
        try:
            while True:
                got.append(victim.recv(65536))
        except socket.timeout:
            pass
        victim.close()
        toward_victim = sum(len(d) for d in got)
        t.check(len(spoofed) <= 21 and 0 < toward_victim <= REPLY_MAX,
                "a %d-byte get sent %d reply bytes toward its source (bound %d, the value is "
                "%d bytes twice)" % (len(spoofed), toward_victim, REPLY_MAX, len(big)))
        t.check(delta(before, after, "udp_drop_reply_cut") > 0, "the rest counted as reply_cut")
        t.eq(cl.request(b"get k1\r\n"), b"VALUE k1 5 5\r\nhello\r\nEND\r\n",
             "still answering, item intact")
        t.check(int(after.get("dpdk:lcore0:requests", 0)) > 0, "per-lcore request counter")
        t.check(int(after.get("dpdk:lcore0:get_hits", 0)) > int(before.get("dpdk:lcore0:get_hits", 0)),
                "per-lcore hit counter")
        t.check(int(after.get("dpdk:lcore0:busy_polls", 0)) > 0 and
                int(after.get("dpdk:lcore0:idle_polls", 0)) > 0, "busy and idle polls counted")
        t.check(int(after.get("dpdk:lcore0:busy_us", 0)) > int(before.get("dpdk:lcore0:busy_us", 0))
                and int(after.get("dpdk:lcore0:idle_us", 0)) > 0, "busy and idle time counted")

        if exception:
            t.begin("TCP through the exception path to the kernel")
            c = socket.create_connection((CACHET_IP, args.tcp_port), timeout=5)
            c.sendall(b"get big\r\n")
            want = b"VALUE big 0 %d\r\n" % len(big) + big + b"\r\nEND\r\n"
            buf = b""
            deadline = time.monotonic() + 10
            while len(buf) < len(want) and time.monotonic() < deadline:
                chunk = c.recv(65536)
                if not chunk:
                    break
                buf += chunk
            t.eq(buf, want, "TCP get of the UDP-written value, byte-exact")
            st = udp_stats(cl)  # over UDP (DPDK): the kernel path's connection is in it too
            t.check(int(st.get("curr_connections", 0)) >= 1 and
                    int(st.get("bytes_read", 0)) > 0, "stats over UDP counts the TCP connection",
                    "curr_connections %s" % st.get("curr_connections"))
            c.close()


def wait_port_ready(log, starts, timeout=30.0):
    """Until cachetd has logged its DPDK port started `starts` times: DPDK's tap PMD configures
    the interface by name in cachetd's namespace, so it must not be moved away before that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if open(log, errors="replace").read().count("cachet info: dpdk: port ") >= starts:
            return True
        time.sleep(0.05)
    return False


def upgrade(t, args, srv_ns, cli_ns, tap, first, base_cmd, admin, log, tail):
    t.begin("upgrade in place on the DPDK port")
    admin2 = admin + ".next"
    cmd = [c for c in base_cmd] + ["--admin-socket", admin2, "--takeover", admin]
    second = harness.spawn(cmd, log)
    try:
        first.wait(timeout=20)
    except Exception:  # noqa: BLE001 - reported below
        pass
    t.check(first.poll() is not None, "first cachetd exited", tail())
    t.check(netns.wait_link(srv_ns, tap) and wait_port_ready(log, 2), "successor started its port",
            tail())
    netns.ip("link", "set", tap, "netns", cli_ns, ns=srv_ns)
    netns.ip("addr", "add", CLIENT_IP + "/24", "dev", tap, ns=cli_ns)
    netns.ip("link", "set", tap, "up", ns=cli_ns)
    time.sleep(0.3)
    with netns.Inside(cli_ns):
        cl = Client()
        got = None
        for _ in range(20):  # the new MAC must be learned: ARP first
            got = cl.try_request(b"get k1\r\n")
            if got:
                break
        t.eq(got, b"VALUE k1 5 5\r\nhello\r\nEND\r\n", "item written before served after")
        big = cl.request(b"get big\r\n")
        t.check(len(big) > 100 * 1024, "100 KB value kept (%d bytes back)" % len(big))
    gap = [ln for ln in tail().splitlines() if "hand-over gap" in ln]
    t.check(bool(gap), "successor logged the port hand-over gap", tail())
    if gap:
        print(gap[-1])
    return second


def main():
    args = harness.parse_args(__doc__, lambda p: (
        p.add_argument("--huge", action="store_true", help="use hugepages (reserve them)"),
        p.add_argument("--exception-path", action="store_true", help="also test TCP via a tap"),
        p.add_argument("--tcp-port", type=int, default=11312),
        p.add_argument("--upgrade", action="store_true", help="also upgrade in place"),
        p.add_argument("--flood", type=int, default=3000)))
    name = "dpdk_tap%s%s%s" % ("_huge" if args.huge else "",
                               "_exception" if args.exception_path else "",
                               "_upgrade" if args.upgrade else "")
    t = harness.Checker(name, args.verbose)
    if harness.is_memcached(args.server) or not netns.available():
        print("SKIP: needs cachetd, root, /dev/net/tun and iproute2")
        return 77
    mem = "--no-huge -m 512"
    if args.huge:
        huge_dir = hugepages.reserve(256)
        if not huge_dir:
            print("SKIP: no hugepages could be reserved")
            return 77
        mem = "--huge-dir %s -m 512" % huge_dir
    tag = "%d" % (os.getpid() % 100000)
    srv_ns, cli_ns = netns.make("cachet-s%s" % tag), netns.make("cachet-c%s" % tag)
    tap, exc = "ctap%s" % tag, "cexc%s" % tag
    vdevs = "--vdev=net_tap0,iface=%s" % tap
    extra = []
    if args.exception_path:
        vdevs += " --vdev=net_tap1,iface=%s" % exc
        extra = ["--dpdk-exception-port", "1", "-p", str(args.tcp_port)]
    eal = "-l 0 --no-pci %s --file-prefix cachet-t%s %s" % (mem, tag, vdevs)
    cmd = ["ip", "netns", "exec", srv_ns, args.server, "--driver", "dpdk", "--dpdk-args", eal,
           "--dpdk-ip", CACHET_IP + "/24", "-U", str(UDP_PORT), "-m", "64",
           "--dpdk-src-rate", "2000", "--udp-reply-max", str(REPLY_MAX), "-v"] + extra
    if not args.exception_path:
        cmd += ["-p", "0"]
    tmp = tempfile.mkdtemp(prefix="cachet-dpdk-")
    log = os.path.join(tmp, "cachetd.log")
    tail = lambda: open(log, errors="replace").read()[-3000:]
    admin = os.path.join(tmp, "admin.sock")
    shm = "/dev/shm/cachet-dpdk-%s" % tag
    if args.upgrade:
        cmd += ["--shm", shm]
    proc = harness.spawn(cmd + (["--admin-socket", admin] if args.upgrade else []), log)
    try:
        if not netns.wait_link(srv_ns, tap) or not wait_port_ready(log, 1):
            t.fail("cachetd created tap %s and started its port" % tap, tail())
            return t.finish()
        netns.ip("link", "set", tap, "netns", cli_ns, ns=srv_ns)
        netns.ip("addr", "add", CLIENT_IP + "/24", "dev", tap, ns=cli_ns)
        netns.ip("link", "set", tap, "up", ns=cli_ns)
        time.sleep(0.3)
        t.run_section(run_checks, t, args, srv_ns, cli_ns, tap, args.exception_path)
        if args.upgrade:
            proc = upgrade(t, args, srv_ns, cli_ns, tap, proc, cmd, admin, log, tail)
        t.check(proc.poll() is None, "cachetd still running at the end", tail())
    finally:
        harness.stop_pid(proc)
        netns.delete_all()
        if args.huge:
            hugepages.release()
        if os.path.exists(shm):
            os.unlink(shm)
    return t.finish()


if __name__ == "__main__":
    harness.run(main, watchdog_s=120)
