// Frame classification and in-place replies for ARP, ICMP echo and UDP (IPv4 only).
#include "drivers/dpdk/packet.hh"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace cachet::drivers::dpdk {
namespace {

constexpr uint16_t kTypeIpv4 = 0x0800;
constexpr uint16_t kTypeArp = 0x0806;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoUdp = 17;

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void wr16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
uint32_t rd32n(const uint8_t* p) {  // stays in network order
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

const char* drop_name(Drop d) {
  static constexpr const char* kNames[] = {
      "none",
#define CACHET_X(name, desc) #name,
      CACHET_DROP_REASONS(CACHET_X)
#undef CACHET_X
  };
  return kNames[static_cast<size_t>(d)];
}

// Headers and small datagrams are tens of bytes: a vectorised loop costs more to set up than
// it saves, so this one stays scalar (GCC would otherwise vectorise it).
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
uint32_t csum_partial(const void* data, size_t len, uint32_t sum) {
  // RFC 1071 section 2(B): the one's-complement sum does not depend on byte order, and since
  // 2^16 = 1 modulo 2^16 - 1 it can be taken over wider words. Sum native (little-endian)
  // 64-bit words with an add-with-carry chain, fold to 16 bits, swap the two bytes once.
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t acc = 0, carries = 0, tail = 0;
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    carries += __builtin_add_overflow(acc, w, &acc);
  }
  if (len >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    tail += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    tail += w;
    p += 2;
    len -= 2;
  }
  if (len) tail += p[0];  // the high byte of a big-endian word: the low byte here
  uint64_t s = (acc & 0xffffffffu) + (acc >> 32) + carries + tail;  // a 2^64 carry is a 1
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  uint64_t total = uint64_t{sum} + (((s & 0xff) << 8) | (s >> 8));
  return static_cast<uint32_t>((total & 0xffffffffu) + (total >> 32));
}

uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The two addresses' share of a checksum (network-order arguments), from their values.
static uint32_t addr_sum(uint32_t src, uint32_t dst) {
  src = ntohl(src);
  dst = ntohl(dst);
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff);
}

// The UDP pseudo header's sum: addresses, protocol, length.
static uint32_t udp_pseudo(uint32_t src, uint32_t dst, size_t udp_len) {
  return addr_sum(src, dst) + kProtoUdp + static_cast<uint32_t>(udp_len);
}

void classify(const uint8_t* f, size_t len, const Identity& me, RxOffload hw, Classified& c) {
  c = Classified{};
  auto drop = [&](Drop why) {
    c.verdict = Verdict::drop;
    c.why = why;
  };
  if (len < kEthLen) return drop(Drop::runt);
  std::memcpy(c.src_mac.data(), f + 6, 6);
  uint16_t type = rd16(f + 12);
  const uint8_t* l3 = f + kEthLen;
  size_t l3len = len - kEthLen;

  if (type == kTypeArp) {
    if (l3len < 28) return drop(Drop::runt);
    if (rd16(l3) != 1 || rd16(l3 + 2) != kTypeIpv4 || l3[4] != 6 || l3[5] != 4)
      return drop(Drop::arp_malformed);
    c.src_ip = rd32n(l3 + 14);
    bool request_for_us = rd16(l3 + 6) == 1 && rd32n(l3 + 24) == me.ip;
    c.verdict = request_for_us ? Verdict::arp_reply : Verdict::arp_learn;
    return;
  }
  if (type != kTypeIpv4) return drop(Drop::ethertype);
  if (l3len < kIpLen) return drop(Drop::runt);
  size_t ihl = static_cast<size_t>(l3[0] & 0x0f) * 4;
  size_t total = rd16(l3 + 2);
  if ((l3[0] >> 4) != 4 || ihl < kIpLen || total < ihl || total > l3len)
    return drop(Drop::ip_header);
  if (!hw.ip_checksum_good && csum_fold(csum_partial(l3, ihl)) != 0xffff)
    return drop(Drop::ip_checksum);
  uint16_t frag = rd16(l3 + 6);
  if ((frag & 0x2000) || (frag & 0x1fff)) return drop(Drop::ip_fragment);
  c.src_ip = rd32n(l3 + 12);
  if (rd32n(l3 + 16) != me.ip) return drop(Drop::ip_not_ours);
  const uint8_t* l4 = l3 + ihl;
  size_t l4len = total - ihl;

  if (l3[9] == kProtoIcmp) {
    if (l4len < 8 || csum_fold(csum_partial(l4, l4len)) != 0xffff)
      return drop(Drop::icmp_malformed);
    c.verdict = l4[0] == 8 ? Verdict::icmp_echo : Verdict::exception;
    return;
  }
  if (l3[9] != kProtoUdp) {
    c.verdict = Verdict::exception;
    return;
  }
  if (l4len < kUdpLen) return drop(Drop::udp_length);
  size_t ulen = rd16(l4 + 4);
  if (ulen < kUdpLen || ulen > l4len) return drop(Drop::udp_length);
  c.src_port = rd16(l4);
  c.dst_port = rd16(l4 + 2);
  if (c.dst_port < me.udp_port || c.dst_port >= me.udp_port + me.udp_ports) {
    c.verdict = Verdict::exception;
    return;
  }
  uint16_t sum = rd16(l4 + 6);
  if (sum != 0 && !hw.l4_checksum_good) {
    uint32_t s = udp_pseudo(rd32n(l3 + 12), rd32n(l3 + 16), ulen);
    if (csum_fold(csum_partial(l4, ulen, s)) != 0xffff) return drop(Drop::udp_checksum);
  }
  c.verdict = Verdict::udp;
  c.payload_off = static_cast<size_t>(l4 + kUdpLen - f);
  c.payload_len = ulen - kUdpLen;
}

size_t arp_reply_in_place(uint8_t* f, size_t len, const Identity& me) {
  uint8_t* a = f + kEthLen;
  std::memcpy(f, f + 6, 6);  // to the asker
  std::memcpy(f + 6, me.mac.data(), 6);
  wr16(a + 6, 2);             // reply
  std::memcpy(a + 18, a + 8, 10);  // target := sender (mac + ip)
  std::memcpy(a + 8, me.mac.data(), 6);
  std::memcpy(a + 14, &me.ip, 4);
  return len;  // same frame, padding and all
}

size_t icmp_echo_reply_in_place(uint8_t* f, size_t /*len: classify checked it*/) {
  uint8_t mac[6];
  std::memcpy(mac, f, 6);
  std::memcpy(f, f + 6, 6);
  std::memcpy(f + 6, mac, 6);
  uint8_t* ip = f + kEthLen;
  size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
  uint8_t addr[4];
  std::memcpy(addr, ip + 12, 4);
  std::memcpy(ip + 12, ip + 16, 4);
  std::memcpy(ip + 16, addr, 4);
  ip[8] = 64;  // fresh TTL
  wr16(ip + 10, 0);
  wr16(ip + 10, static_cast<uint16_t>(~csum_fold(csum_partial(ip, ihl))));
  uint8_t* icmp = ip + ihl;
  size_t icmp_len = rd16(ip + 2) - ihl;
  icmp[0] = 0;  // echo reply
  wr16(icmp + 2, 0);
  wr16(icmp + 2, static_cast<uint16_t>(~csum_fold(csum_partial(icmp, icmp_len))));
  return kEthLen + rd16(ip + 2);
}

size_t gratuitous_arp(uint8_t* f, const Identity& me) {
  std::memset(f, 0xff, 6);
  std::memcpy(f + 6, me.mac.data(), 6);
  wr16(f + 12, kTypeArp);
  uint8_t* a = f + kEthLen;
  wr16(a, 1);
  wr16(a + 2, kTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  wr16(a + 6, 1);
  std::memcpy(a + 8, me.mac.data(), 6);
  std::memcpy(a + 14, &me.ip, 4);
  std::memset(a + 18, 0, 6);
  std::memcpy(a + 24, &me.ip, 4);
  return kEthLen + 28;
}

size_t write_udp_headers(uint8_t* f, const Identity& me, const Peer& to, size_t payload_len,
                         uint16_t ip_id, bool udp_checksum) {
  // The checksums are summed from the header values rather than read back from the frame:
  // loads over bytes just stored piecemeal would stall on store forwarding.
  const size_t udp_len = kUdpLen + payload_len;
  const uint16_t ip_len = static_cast<uint16_t>(kIpLen + udp_len);
  std::memcpy(f, to.mac.data(), 6);
  std::memcpy(f + 6, me.mac.data(), 6);
  wr16(f + 12, kTypeIpv4);
  uint8_t* ip = f + kEthLen;
  wr16(ip, 0x4500);              // version 4, 20-byte header, no TOS
  wr16(ip + 2, ip_len);
  wr16(ip + 4, ip_id);
  wr16(ip + 6, 0x4000);          // don't fragment
  wr16(ip + 8, 64 << 8 | kProtoUdp);  // TTL, protocol
  std::memcpy(ip + 12, &me.ip, 4);
  std::memcpy(ip + 16, &to.ip, 4);
  uint32_t ip_sum =
      0x4500u + ip_len + ip_id + 0x4000u + (64u << 8 | kProtoUdp) + addr_sum(me.ip, to.ip);
  wr16(ip + 10, static_cast<uint16_t>(~csum_fold(ip_sum)));
  uint8_t* udp = ip + kIpLen;
  wr16(udp, to.our_port);
  wr16(udp + 2, to.port);
  wr16(udp + 4, static_cast<uint16_t>(udp_len));
  uint16_t udp_sum = 0;
  if (udp_checksum) {
    // The pseudo header, the UDP header (ports, length), then the payload.
    uint32_t s = udp_pseudo(me.ip, to.ip, udp_len) + to.our_port + to.port +
                 static_cast<uint32_t>(udp_len);
    s = csum_partial(udp + kUdpLen, payload_len, csum_fold(s));
    udp_sum = static_cast<uint16_t>(~csum_fold(s));
    if (udp_sum == 0) udp_sum = 0xffff;  // 0 would mean "no checksum"
  }
  wr16(udp + 6, udp_sum);
  return kUdpHeadroom + payload_len;
}

bool parse_ipv4_cidr(const std::string& s, uint32_t* ip, unsigned* prefix, std::string* error) {
  std::string addr = s;
  *prefix = 24;
  size_t slash = s.find('/');
  if (slash != std::string::npos) {
    addr = s.substr(0, slash);
    const char* b = s.data() + slash + 1;
    const char* e = s.data() + s.size();
    auto [p, ec] = std::from_chars(b, e, *prefix);
    if (ec != std::errc() || p != e || *prefix < 1 || *prefix > 32 || b == e) {
      *error = "--dpdk-ip: prefix length must be 1..32 in '" + s + "'";
      return false;
    }
  }
  in_addr a{};
  if (inet_pton(AF_INET, addr.c_str(), &a) != 1) {
    *error = "--dpdk-ip: '" + s + "' is not an IPv4 address (A.B.C.D/NN)";
    return false;
  }
  *ip = a.s_addr;
  return true;
}

std::string ipv4_to_string(uint32_t ip) {
  char buf[INET_ADDRSTRLEN];
  in_addr a{};
  a.s_addr = ip;
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

}  // namespace cachet::drivers::dpdk
