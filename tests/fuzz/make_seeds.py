"""Writes the seed corpora of the fuzz targets (corpus/<target>/seed-*), so that every seed
says where it came from. Regression inputs (corpus/<target>/regress-*: inputs that once broke
an invariant) are kept as they are. Run it after changing the seeds here:

    /usr/bin/python3 tests/fuzz/make_seeds.py
"""

import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import differential_corpus as dc  # noqa: E402


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def clear(target):
    d = os.path.join(HERE, "corpus", target)
    if os.path.isdir(d):
        for f in os.listdir(d):
            if f.startswith("seed-"):
                os.remove(os.path.join(d, f))


# ------------------------------------------------------------------ text and meta protocols
# A stream target's input: [largest read (0 = all at once)] [read-size seed] then the bytes.
TEMPLATE = re.compile(rb"\{(k\d*|K250|K251|cas\d+([+-]\d+)?)\}")


def expand(data):
    def sub(m):
        tok = m.group(1)
        if tok == b"K250":
            return b"k" * 250
        if tok == b"K251":
            return b"k" * 251
        if tok.startswith(b"cas"):
            return b"2"
        return b"key" + tok[1:]
    return TEMPLATE.sub(sub, data)


def stream_seeds():
    for t in ("fuzz_text", "fuzz_meta", "fuzz_lease"):
        clear(t)
    for n, (name, steps) in enumerate(dc.CASES):
        data = b"".join(expand(s.data if isinstance(s, dc.Raw) else s)
                        for s in steps if not isinstance(s, dc.Sleep))
        # The fuzz store takes items up to 4 KB: a large value's header and a few bytes of it
        # reach the same paths.
        data = data[:3000]
        target = "fuzz_meta" if name.startswith("meta") else "fuzz_text"
        reads = bytes([0 if n % 2 else 1 + n % 23, n % 256])
        write(target, name, reads + data)
    write("fuzz_meta", "lease_shapes", b"\x05\x01mg key v c t\r\nms key 3 T10 I\r\nabc\r\n"
          b"mg key v c\r\nmd key I T30\r\nmg key v c\r\nmg key v c q\r\nmn\r\n")
    # mcrouter's lease dialect over the same keys as the classic and meta commands.
    leases = {
        "miss_fill": b"lease-get key\r\nlease-get key\r\nlease-set key 2 5 0 3\r\nabc\r\n"
                     b"lease-get key\r\nget key\r\n",
        "stale_after_delete": b"set key 3 0 5\r\nhello\r\ndelete key\r\nlease-get key\r\n"
                              b"lease-set key 99 0 0 2\r\nhi\r\nget key\r\nmg key v c\r\n",
        "holdoff": b"delete key 5\r\nadd key 0 0 1\r\nx\r\nlease-get key\r\n"
                   b"lease-set key 7 0 0 1\r\ny\r\nset key 0 0 1\r\nz\r\ndelete key 0\r\n"
                   b"delete key -1\r\ndelete key 99999999999\r\n",
        "invalidated_token": b"lease-get key\r\nset key 0 0 1\r\na\r\ndelete key\r\n"
                             b"lease-set key 2 0 0 1 noreply\r\nb\r\nflush_all\r\n"
                             b"lease-get key\r\n",
        "metaget": b"set key 1 100 2\r\nhi\r\nmetaget key\r\nmetaget nokey\r\n"
                   b"set key2 0 30 1\r\nx\r\nmetaget key2\r\nmetaget\r\n",
        "meta_mix": b"mg key N30 v c t\r\nlease-get key\r\nms key 1 I C1\r\nx\r\n"
                    b"md key I\r\nlease-get key\r\nmg key v\r\n",
        "bad_lines": b"lease-get\r\nlease-set key\r\nlease-set key x 0 0 1\r\na\r\n"
                     b"lease-set key 2 0 0 -1\r\nlease-get " + b"k" * 251 + b"\r\n",
    }
    for n, (name, data) in enumerate(leases.items()):
        write("fuzz_lease", name, bytes([0 if n % 2 else 1 + n, n]) + data)


# ------------------------------------------------------------------ binary protocol
def bin_req(op, key=b"", extras=b"", value=b"", opaque=0, cas=0, body=None):
    total = len(extras) + len(key) + len(value) if body is None else body
    return struct.pack("!BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0, total, opaque,
                       cas) + extras + key + value


def binary_seeds():
    clear("fuzz_binary")
    flags_exp = struct.pack("!II", 7, 0)
    delta = struct.pack("!QQI", 5, 10, 0)
    seeds = {
        "get_miss": bin_req(0x00, b"k"),
        "set_get": bin_req(0x01, b"k", flags_exp, b"value") + bin_req(0x00, b"k") +
        bin_req(0x0c, b"k") + bin_req(0x09, b"nope") + bin_req(0x0d, b"k") + bin_req(0x0a),
        "add_replace": bin_req(0x02, b"k", flags_exp, b"a") + bin_req(0x02, b"k", flags_exp, b"b")
        + bin_req(0x03, b"k", flags_exp, b"c") + bin_req(0x03, b"x", flags_exp, b"d"),
        "cas": bin_req(0x01, b"k", flags_exp, b"v") + bin_req(0x01, b"k", flags_exp, b"w", cas=1)
        + bin_req(0x01, b"k", flags_exp, b"w", cas=999),
        "delete": bin_req(0x01, b"k", flags_exp, b"v") + bin_req(0x04, b"k") +
        bin_req(0x04, b"k") + bin_req(0x14, b"k"),
        "incr_decr": bin_req(0x05, b"n", delta) + bin_req(0x05, b"n", delta) +
        bin_req(0x06, b"n", delta) + bin_req(0x15, b"n", delta) +
        bin_req(0x05, b"m", struct.pack("!QQI", 1, 0, 0xffffffff)),
        "append_prepend": bin_req(0x01, b"k", flags_exp, b"mid") + bin_req(0x0e, b"k", b"", b">")
        + bin_req(0x0f, b"k", b"", b"<") + bin_req(0x19, b"k", b"", b"q") + bin_req(0x00, b"k"),
        "quiet_sets": b"".join(bin_req(0x11, b"q%d" % i, flags_exp, b"%d" % i) for i in range(20))
        + bin_req(0x0a),
        "touch_gat": bin_req(0x01, b"k", flags_exp, b"v") + bin_req(0x1c, b"k", b"\0\0\0\x10") +
        bin_req(0x1d, b"k", b"\0\0\0\0") + bin_req(0x1e, b"x", b"\0\0\0\0") +
        bin_req(0x23, b"k", b"\0\0\0\0") + bin_req(0x24, b"k", b"\0\0\0\0"),
        "flush_version_stat": bin_req(0x0b) + bin_req(0x08, b"", b"\0\0\0\0") + bin_req(0x18) +
        bin_req(0x10) + bin_req(0x10, b"settings") + bin_req(0x10, b"bogus"),
        "verbosity_sasl": bin_req(0x1b, b"", b"\0\0\0\x01") + bin_req(0x20) + bin_req(0x21, b"PLAIN"),
        "unknown_opcode": bin_req(0x55, b"k", b"", b"body") + bin_req(0x0a),
        "bad_lengths": bin_req(0x00, b"k", b"xx") + bin_req(0x0a),
        "short_body": bin_req(0x01, b"key", flags_exp, b"", body=3),
        "too_large": bin_req(0x01, b"big", flags_exp, b"L" * 5000) + bin_req(0x00, b"big"),
        "bad_magic": b"\x81" + bin_req(0x0a)[1:],
        "quit": bin_req(0x07) + bin_req(0x0a),
        "partial": bin_req(0x01, b"k", flags_exp, b"value")[:30],
    }
    for n, (name, data) in enumerate(sorted(seeds.items())):
        write("fuzz_binary", name, bytes([0 if n % 2 else 1 + n % 19, n]) + data)


# ------------------------------------------------------------------ UDP
def frame(req_id, body, seq=0, total=1, reserved=0):
    return struct.pack("!HHHH", req_id, seq, total, reserved) + body


def udp_seeds():
    for t in ("fuzz_udp_frame", "fuzz_datagram"):
        clear(t)
    write("fuzz_udp_frame", "get", frame(7, b"get a\r\n"))
    write("fuzz_udp_frame", "two_datagrams", frame(9, b"x" * 1500, 0, 2))
    write("fuzz_udp_frame", "header_only", frame(1, b""))
    write("fuzz_udp_frame", "long_reply_at_cap", b"\xff" + struct.pack("!I", 65535 * 1392 // 8)[1:])
    write("fuzz_udp_frame", "long_reply_over_cap", b"\xff\xff\xff\xff")
    datagrams = {
        "get_miss": frame(1, b"get k\r\n"),
        "set_get": frame(2, b"set k 0 0 5\r\nhello\r\nget k\r\n"),
        "multiget": frame(3, b"set a 1 0 1\r\na\r\nset b 2 0 2\r\nbb\r\nget a b c a\r\n"),
        "big_reply": frame(4, b"set k 0 0 4000\r\n" + b"v" * 4000 + b"\r\nget k k k\r\n"),
        "incomplete": frame(5, b"set k 0 0 10\r\nabc"),
        "two_requests_cut": frame(6, b"get a\r\nget"),
        "meta": frame(7, b"ms k 2\r\nhi\r\nmg k v c\r\nmn\r\n"),
        "stats": frame(8, b"stats\r\n"),
        "binary_get": frame(9, bin_req(0x01, b"k", struct.pack("!II", 0, 0), b"v") +
                            bin_req(0x00, b"k")),
        "total_two": frame(10, b"get k\r\n", 0, 2),
        "reserved": frame(11, b"get k\r\n", 0, 1, 5),
        "quit": frame(12, b"quit\r\nget k\r\n"),
    }
    for name, data in datagrams.items():
        write("fuzz_datagram", name, data)


# ------------------------------------------------------------------ DPDK packet layer
OUR_MAC = bytes([2, 0, 0, 0, 0, 1])
PEER_MAC = bytes([2, 0, 0, 0, 0, 2])
OUR_IP = bytes([10, 0, 0, 2])
PEER_IP = bytes([10, 0, 0, 1])


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ipv4(proto, payload, src=PEER_IP, dst=OUR_IP, frag=0x4000, options=b""):
    ihl = 5 + len(options) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), 1, frag, 64, proto,
                    0, src, dst) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return OUR_MAC + PEER_MAC + b"\x08\x00" + h + payload


def udp(payload, sport=40000, dport=11211, checksum=True):
    u = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if checksum:
        pseudo = PEER_IP + OUR_IP + struct.pack("!BBH", 0, 17, len(u))
        c = csum(pseudo + u) or 0xffff
        u = u[:6] + struct.pack("!H", c) + u[8:]
    return ipv4(17, u)


def icmp_echo(data=b"ping"):
    m = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + data
    m = m[:2] + struct.pack("!H", csum(m)) + m[4:]
    return ipv4(1, m)


def arp(op, target_ip=OUR_IP):
    return (b"\xff" * 6 + PEER_MAC + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) +
            PEER_MAC + PEER_IP + b"\0" * 6 + target_ip)


def packet_seeds():
    clear("fuzz_packet")
    seeds = {
        "udp_get": udp(frame(1, b"get k\r\n")),
        "udp_set_get": udp(frame(2, b"set k 0 0 4000\r\n" + b"v" * 1000 + b"\r\n")),
        "udp_big_reply": udp(frame(3, b"set k 0 0 1000\r\n" + b"v" * 1000 + b"\r\nget k k k k\r\n")),
        "udp_no_checksum": udp(frame(4, b"get k\r\n"), checksum=False),
        "udp_second_port": udp(frame(5, b"version\r\n"), dport=11212),
        "udp_other_port": udp(frame(6, b"get k\r\n"), dport=53),
        "udp_bad_frame": udp(frame(7, b"get k\r\n", 0, 2)),
        "udp_short_frame": udp(b"\0\1"),
        "icmp_echo": icmp_echo(),
        "icmp_odd": icmp_echo(b"odd"),
        "arp_request": arp(1),
        "arp_other": arp(1, bytes([10, 0, 0, 9])),
        "arp_reply": arp(2),
        "tcp": ipv4(6, b"\0" * 20),
        "ip_options": ipv4(17, struct.pack("!HHHH", 1, 11211, 16, 0) + frame(1, b"x"),
                           options=b"\x01\x01\x01\x00"),
        "fragment": ipv4(17, b"\0" * 16, frag=0x2000),
        "not_ours": ipv4(17, b"\0" * 16, dst=bytes([10, 0, 0, 3])),
        "runt": OUR_MAC + PEER_MAC + b"\x08",
        "ipv6": OUR_MAC + PEER_MAC + b"\x86\xdd" + b"\0" * 40,
    }
    for n, (name, f) in enumerate(sorted(seeds.items())):
        # options: NIC checksum flags, reply checksum, budget 1400 << (n % 8)
        write("fuzz_packet", name, bytes([(n % 4) | (4 if n % 3 else 0) | ((n % 8) << 3)]) + f)


# ------------------------------------------------------------------ takeover hand-over
def record(kind, length):
    return struct.pack("<II", kind, length)


def send(data, fds=0):
    """One send of the takeover target's input: [ctl: descriptors attached][n][n bytes]."""
    out = b""
    while True:  # sends of at most 255 bytes
        chunk, data = data[:255], data[255:]
        out += bytes([fds, len(chunk)]) + chunk
        fds = 0
        if not data:
            return out


def takeover_seeds():
    clear("fuzz_takeover")
    seeds = {
        "handoff_ok": send(record(1, 0), 1) + send(record(2, 0), 1) +
        send(record(3, 11) + b"get pending", 1) + send(record(0, 0)) + send(b"R"),
        "handoff_error": send(record(1, 0), 1) + send(record(0, 0)) + send(b"Ecannot detach"),
        "end_with_fd": send(record(0, 0), 1) + send(b"R"),
        "unknown_kind": send(record(9, 0), 1),
        "no_descriptor": send(record(1, 0)),
        "two_descriptors": send(record(2, 0), 3) + send(record(0, 0)),
        "stream_cut_short": send(record(3, 100) + b"only a few bytes", 1),
        "stream_huge_claim": send(record(3, 0xffffffff) + b"get", 1),
        "record_split": send(record(1, 0)[:3], 1) + send(record(1, 0)[3:]),
        "empty": b"",
    }
    for name, data in seeds.items():
        write("fuzz_takeover", name, data)


# ------------------------------------------------------------------ control API and config
def control_seeds():
    clear("fuzz_control_api")
    clear("fuzz_config")
    lines = [
        b'{"cmd":"ping"}', b'{"cmd":"status"}', b'{"cmd":"stats"}', b'{"cmd":"stats","group":"items"}',
        b'{"cmd":"stats","group":5}', b'{"cmd":"config_get"}',
        b'{"cmd":"config_get","key":"supervisor.backoff_max_ms"}', b'{"cmd":"config_get","key":7}',
        b'{"cmd":"config_set","key":"supervisor.backoff_max_ms","value":"5000"}',
        b'{"cmd":"config_set","key":"dataplane.verbosity","value":"1"}',
        b'{"cmd":"config_set","key":"control.log_level","value":"loud"}',
        b'{"cmd":"config_set","key":"metrics.port","value":"0"}',
        b'{"cmd":"config_set","key":"dataplane.port","value":"1"}',
        b'{"cmd":"config_set","key":"nope","value":"1"}', b'{"cmd":"config_set","key":1}',
        b'{"cmd":"upgrade"}', b'{"cmd":"upgrade","binary":"/bin/false","discard_cache":true}',
        b'{"cmd":"restart"}', b'{"cmd":"stop","discard":true}', b'{"cmd":"stop","discard":"yes"}',
        b'{"cmd":"bogus"}', b'{"cmd":1}', b'[1,2]', b'not json', b'',
    ]
    for n, line in enumerate(lines):
        write("fuzz_control_api", "line%02d" % n, line)
    write("fuzz_control_api", "session", b"\n".join(lines))
    write("fuzz_config", "empty", b"")
    write("fuzz_config", "typical", b"[dataplane]\nmemory_mb = 512\nthreads = 2\n"
          b"extra_args = [\"-v\"]\n[supervisor]\nbackoff_max_ms = 1000\n[metrics]\nport = 0\n")
    write("fuzz_config", "strings", b'[dataplane]\narena = "a\\tb\\u00e9\\"q"\n'
          b"listen = 'literal'\ndriver = \"dpdk\"\n[control]\nlog_level = \"debug\"\n")
    write("fuzz_config", "bad_type", b"[dataplane]\nthreads = \"two\"\n")
    write("fuzz_config", "bad_range", b"[supervisor]\nbackoff_initial_ms = 0\n")
    write("fuzz_config", "unknown", b"[nope]\nx = 1\n[dataplane]\ny = 2\n")
    write("fuzz_config", "real", b"[dataplane]\ngrowth_factor = 1.25\nchunk_min = 96\n")
    write("fuzz_config", "syntax", b"[dataplane\nthreads = = 2\n")


def flag_seeds():
    clear("fuzz_flags")
    lines = {
        "memcached_style": [b"-p", b"11211", b"-U", b"0", b"-l", b"127.0.0.1", b"-m", b"64", b"-t",
                            b"2", b"-c", b"1024", b"-I", b"1m", b"-vv"],
        "long_names": [b"--port=11311", b"--memory-limit=2g", b"--max-item-size=512k",
                       b"--slab-min-size=96", b"--slab-growth-factor=1.25", b"--conn-limit=10"],
        "takeover": [b"--shm", b"cachet-x", b"--admin-socket", b"/tmp/a.sock", b"--takeover",
                     b"/tmp/b.sock"],
        "takeover_no_shm": [b"--takeover", b"/tmp/b.sock"],
        "dpdk": [b"--driver", b"dpdk", b"--dpdk-args", b"-l 0 --no-pci", b"--dpdk-ip",
                 b"10.0.0.2/24", b"--dpdk-reply-max", b"64k", b"--dpdk-src-rate", b"1000"],
        "bad_values": [b"-p", b"70000", b"-m", b"0", b"-I", b"12", b"-f", b"3"],
        "item_over_half": [b"-m", b"1", b"-I", b"1m"],
        "missing_value": [b"-p"],
        "unknown": [b"-Z", b"--bogus", b"stray"],
        "help": [b"-h"],
    }
    for name, args in lines.items():
        write("fuzz_flags", name, b"\0".join(args))


# ------------------------------------------------------------------ damaged arenas
def patch(region, offset, data, xor=False):
    return bytes([region | (8 if xor else 0)]) + struct.pack("<I", offset)[:3] + \
        bytes([len(data) - 1]) + data


def arena_seeds():
    clear("fuzz_arena")
    seeds = {
        "clean": b"\0",
        "crashed": b"\1",
        "magic": b"\0" + patch(0, 0, b"X"),
        "layout_version": b"\0" + patch(0, 8, b"\2"),
        "pages_given": b"\0" + patch(0, 164, b"\xff\xff"),
        "class_free_head": b"\0" + patch(1, 128 + 16, b"\x40\x00\x00\x00\x00\x01"),
        "class_chain": b"\0" + patch(1, 128 + 40, b"\x01\x00\x00\x00"),
        "class_carve": b"\0" + patch(1, 128 + 52, b"\xff\xff\x00\x00"),
        "page_class": b"\0" + patch(2, 0, b"\x07"),
        "page_next_loop": b"\0" + patch(2, 4, b"\x00\x00\x00\x00"),
        "index_shape": b"\0" + patch(3, 0, b"\xff\xff\xff\xff\x20"),
        "index_overflow": b"\0" + patch(3, 20, b"\xff\xff\x00\x00"),
        "bucket_slots": b"\0" + patch(4, 8, b"\x01\x02\x03\x04\x05\x06\x07\x08", xor=True),
        "bucket_overflow_link": b"\0" + patch(4, 4, b"\x05\x00\x00\x00"),
        "overflow_loop": b"\0" + patch(5, 4, b"\x01\x00\x00\x00"),
        "item_value": b"\0" + patch(6, 60, b"Z"),
        "item_value_crashed": b"\1" + patch(6, 60, b"Z"),
        "item_header": b"\0" + patch(6, 8, b"\xff\xff\xff\x00"),
        "item_class": b"\0" + patch(6, 33, b"\xfe"),
        "item_state": b"\1" + patch(6, 32, b"\x09"),
        "many": b"\1" + patch(4, 100, b"\xff" * 16) + patch(6, 1000, b"\x00" * 16) +
        patch(1, 200, b"\x11" * 8, xor=True) + patch(7, 70000, b"junk"),
    }
    for name, data in seeds.items():
        write("fuzz_arena", name, data)


if __name__ == "__main__":
    stream_seeds()
    binary_seeds()
    udp_seeds()
    packet_seeds()
    takeover_seeds()
    control_seeds()
    flag_seeds()
    arena_seeds()
