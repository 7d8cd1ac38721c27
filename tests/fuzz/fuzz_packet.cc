// Fuzz target: the DPDK path's packet layer (drivers/dpdk/packet.hh) on arbitrary Ethernet
// frames, and the reply path the poll loop (drivers/dpdk/lcore.cc) runs for each verdict.
// data[0] holds the options: bit 0/1 the NIC vouched for the IPv4/L4 checksum, bit 2 replies
// carry a UDP checksum, bits 3-5 the reply budget (1400 << n bytes); the frame follows, in a
// buffer of exactly its length so that a read past it is an AddressSanitizer report.
// Invariants: reads stay inside the frame; a drop names its reason; an ARP or ICMP reply is
// no longer than the request and is, seen from the asker, a well-formed ARP reply or echo
// reply with good checksums; a UDP payload lies inside the frame on one of our ports; a
// request's reply datagrams stay within the budget, each frame within one 1442-byte
// datagram, and each classifies back, at the peer, as UDP from our port carrying exactly the
// reply bytes.
#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "dataplane/udp_frame.hh"
#include "drivers/dpdk/packet.hh"
#include "drivers/udp_policy.hh"
#include "tests/fuzz/harness.hh"

using namespace cachet;
using namespace cachet::drivers::dpdk;

namespace {

Identity me() {
  Identity i;
  i.mac = {0x02, 0, 0, 0, 0, 0x01};
  i.ip = htonl(0x0a000002);  // 10.0.0.2
  i.udp_port = 11211;
  i.udp_ports = 2;
  return i;
}

void check_arp(const std::vector<uint8_t>& f, const Identity& us) {
  std::vector<uint8_t> r = f;
  FUZZ_EXPECT(f.size() >= kEthLen + 28, "ARP reply verdict for a {}-byte frame", f.size());
  const size_t n = arp_reply_in_place(r.data(), r.size(), us);
  FUZZ_EXPECT(n == f.size(), "ARP reply of {} bytes for a {}-byte request", n, f.size());
  const uint8_t* a = r.data() + kEthLen;
  const uint8_t* q = f.data() + kEthLen;
  FUZZ_EXPECT(std::memcmp(r.data(), f.data() + 6, 6) == 0 &&
                   std::memcmp(r.data() + 6, us.mac.data(), 6) == 0 && a[6] == 0 && a[7] == 2 &&
                   std::memcmp(a + 8, us.mac.data(), 6) == 0 &&
                   std::memcmp(a + 14, &us.ip, 4) == 0 && std::memcmp(a + 18, q + 8, 10) == 0,
               "ARP reply fields");
  Identity asker;
  std::memcpy(asker.mac.data(), q + 8, 6);
  std::memcpy(&asker.ip, q + 14, 4);
  const Classified back = classify(r.data(), n, asker);
  FUZZ_EXPECT(back.verdict == Verdict::arp_learn, "the ARP reply classifies as {} at the asker",
               static_cast<int>(back.verdict));
}

void check_icmp(const std::vector<uint8_t>& f, const Classified& c) {
  std::vector<uint8_t> r = f;
  const size_t n = icmp_echo_reply_in_place(r.data(), r.size());
  FUZZ_EXPECT(n <= f.size(), "echo reply of {} bytes for a {}-byte request", n, f.size());
  Identity asker;
  asker.ip = c.src_ip;
  const Classified back = classify(r.data(), n, asker);
  FUZZ_EXPECT(back.verdict == Verdict::exception, "the echo reply classifies as {} (drop {})",
               static_cast<int>(back.verdict), drop_name(back.why));
  FUZZ_EXPECT(r[kEthLen + ((r[kEthLen] & 0x0f) * 4)] == 0, "echo reply type");
}

struct Replies : drivers::DatagramSink {
  Replies(const Identity& us, const Peer& to, size_t max, bool checksum)
      : us(us), to(to), guard(drivers::UdpPolicy{0, static_cast<uint32_t>(max)}, 1),
        checksum(checksum) {}
  void emit(std::string_view head, std::string_view body) override {
    const size_t payload = head.size() + body.size();
    if (!guard.reply_fits(sent, payload)) return;  // over the policy: counted and cut
    used += payload;
    std::vector<uint8_t> f(kUdpHeadroom + payload);
    std::memcpy(f.data() + kUdpHeadroom, head.data(), head.size());
    std::memcpy(f.data() + kUdpHeadroom + head.size(), body.data(), body.size());
    const size_t n = write_udp_headers(f.data(), us, to, payload, ip_id++, checksum);
    FUZZ_EXPECT(n == f.size() && n <= kUdpHeadroom + dataplane::udp::kMaxDatagram,
                 "reply frame of {} bytes for {} payload bytes", n, payload);
    Identity peer;
    peer.mac = to.mac;
    peer.ip = to.ip;
    peer.udp_port = to.port;
    peer.udp_ports = 1;
    const Classified back = classify(f.data(), n, peer);
    FUZZ_EXPECT(back.verdict == Verdict::udp && back.src_port == to.our_port &&
                     back.payload_off == kUdpHeadroom && back.payload_len == payload,
                 "the reply frame classifies at the peer as {} (drop {})",
                 static_cast<int>(back.verdict), drop_name(back.why));
  }
  Identity us;
  Peer to;
  drivers::UdpGuard guard;
  size_t sent = 0;  // the guard's running total
  size_t used = 0;  // payload bytes that went out
  bool checksum;
  uint16_t ip_id = 0;
};

void check_udp(const std::vector<uint8_t>& f, const Classified& c, const Identity& us,
               uint8_t opts) {
  FUZZ_EXPECT(c.payload_off >= kUdpHeadroom && c.payload_off + c.payload_len <= f.size() &&
                   c.dst_port >= us.udp_port && c.dst_port < us.udp_port + us.udp_ports,
               "UDP payload [{}, +{}) in a {}-byte frame, port {}", c.payload_off,
               c.payload_len, f.size(), c.dst_port);
  const uint8_t* p = f.data() + c.payload_off;
  const size_t max = size_t{1400} << ((opts >> 3) & 7);
  fuzz::Target t;
  Replies sink(us, Peer{c.src_mac, c.src_ip, c.src_port, c.dst_port}, max, opts & 4);
  t.server->datagram(0, {reinterpret_cast<const char*>(p), c.payload_len}, sink);
  FUZZ_EXPECT(sink.used <= max, "{} reply bytes over a budget of {}", sink.used, max);
  t.check_store();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t opts = data[0];
  const std::vector<uint8_t> f(data + 1, data + size);  // exactly the frame: no slack to read
  const Identity us = me();
  RxOffload hw;
  hw.ip_checksum_good = opts & 1;
  hw.l4_checksum_good = opts & 2;
  Classified c;
  classify(f.data(), f.size(), us, hw, c);
  switch (c.verdict) {
    case Verdict::drop:
      FUZZ_EXPECT(c.why != Drop::none && c.why < Drop::count, "a drop without a reason");
      break;
    case Verdict::arp_reply: check_arp(f, us); break;
    case Verdict::icmp_echo: check_icmp(f, c); break;
    case Verdict::udp: check_udp(f, c, us, opts); break;
    case Verdict::arp_learn:
    case Verdict::exception: break;
  }
  return 0;
}
