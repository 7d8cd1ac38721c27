// The bypass path's packet layer: classification of good and bad frames, in-place ARP and ICMP
// replies, UDP headers that round-trip, and no read past any truncated frame.
#include "drivers/dpdk/packet.hh"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace cachet::drivers::dpdk {
namespace {

const Mac kOurMac{0x02, 0, 0, 0, 0, 0x01};
const Mac kPeerMac{0x02, 0, 0, 0, 0, 0x02};

Identity me() {
  Identity id;
  id.mac = kOurMac;
  inet_pton(AF_INET, "10.9.0.2", &id.ip);
  id.udp_port = 11211;
  id.udp_ports = 2;
  return id;
}
uint32_t peer_ip() {
  uint32_t ip;
  inet_pton(AF_INET, "10.9.0.1", &ip);
  return ip;
}

// A UDP request from the peer to us, built with the same header writer the replies use
// (identities swapped), so a good frame is the writer's output.
std::vector<uint8_t> udp_frame(const std::string& payload, uint16_t dport = 11211,
                               bool checksum = true) {
  Identity peer;
  peer.mac = kPeerMac;
  peer.ip = peer_ip();
  Peer to{kOurMac, me().ip, dport, 40000};
  std::vector<uint8_t> f(kUdpHeadroom + payload.size());
  std::memcpy(f.data() + kUdpHeadroom, payload.data(), payload.size());
  write_udp_headers(f.data(), peer, to, payload.size(), 7, checksum);
  return f;
}

void fix_ip_checksum(std::vector<uint8_t>& f) {
  f[kEthLen + 10] = f[kEthLen + 11] = 0;
  uint16_t s = static_cast<uint16_t>(~csum_fold(csum_partial(f.data() + kEthLen, kIpLen)));
  f[kEthLen + 10] = static_cast<uint8_t>(s >> 8);
  f[kEthLen + 11] = static_cast<uint8_t>(s);
}

TEST(Packet, GoodUdpRequestIsForTheDataplane) {
  auto f = udp_frame("hello");
  Classified c = classify(f.data(), f.size(), me());
  ASSERT_EQ(c.verdict, Verdict::udp) << drop_name(c.why);
  EXPECT_EQ(c.payload_len, 5u);
  EXPECT_EQ(std::memcmp(f.data() + c.payload_off, "hello", 5), 0);
  EXPECT_EQ(c.src_port, 40000);
  EXPECT_EQ(c.dst_port, 11211);
  EXPECT_EQ(c.src_ip, peer_ip());
  EXPECT_EQ(c.src_mac, kPeerMac);
  // The second per-core port is ours too; the one after is not.
  EXPECT_EQ(classify(udp_frame("x", 11212).data(), 43, me()).verdict, Verdict::udp);
  EXPECT_EQ(classify(udp_frame("x", 11213).data(), 43, me()).verdict, Verdict::exception);
  // A zero UDP checksum means "none" in IPv4.
  auto nf = udp_frame("abc", 11211, false);
  EXPECT_EQ(classify(nf.data(), nf.size(), me()).verdict, Verdict::udp);
}

TEST(Packet, EveryTruncationIsDroppedNeverRead) {
  auto f = udp_frame(std::string(100, 'p'));
  for (size_t len = 0; len < f.size(); ++len) {
    std::vector<uint8_t> cut(f.begin(), f.begin() + static_cast<long>(len));  // exact size: ASan sees overreads
    Classified c = classify(cut.data(), cut.size(), me());
    EXPECT_EQ(c.verdict, Verdict::drop) << len;
  }
}

TEST(Packet, BadHeadersAreDroppedByReason) {
  auto f = udp_frame("payload");
  auto bad = f;
  bad[12] = 0x86, bad[13] = 0xdd;  // IPv6
  EXPECT_EQ(classify(bad.data(), bad.size(), me()).why, Drop::ethertype);
  bad = f;
  bad[kEthLen + 11] ^= 0x5a;
  EXPECT_EQ(classify(bad.data(), bad.size(), me()).why, Drop::ip_checksum);
  bad = f;
  bad[kEthLen + 6] = 0x20;  // more fragments
  fix_ip_checksum(bad);
  EXPECT_EQ(classify(bad.data(), bad.size(), me()).why, Drop::ip_fragment);
  bad = f;
  bad[kEthLen + 7] = 0x10;  // fragment offset
  fix_ip_checksum(bad);
  EXPECT_EQ(classify(bad.data(), bad.size(), me()).why, Drop::ip_fragment);
  bad = f;
  bad[kEthLen + 0] = 0x65;  // version 6
  EXPECT_EQ(classify(bad.data(), bad.size(), me()).why, Drop::ip_header);
  bad = f;
  bad[kEthLen + kIpLen + 5] += 50;  // UDP length beyond the packet
  EXPECT_EQ(classify(bad.data(), bad.size(), me()).why, Drop::udp_length);
  bad = f;
  bad[kUdpHeadroom] ^= 1;  // payload changed under the checksum
  EXPECT_EQ(classify(bad.data(), bad.size(), me()).why, Drop::udp_checksum);
  RxOffload hw{true, true};  // unless the NIC already checked it
  EXPECT_EQ(classify(bad.data(), bad.size(), me(), hw).verdict, Verdict::udp);
  bad = f;
  bad[kEthLen + 19] ^= 1;  // someone else's address
  fix_ip_checksum(bad);
  EXPECT_EQ(classify(bad.data(), bad.size(), me()).why, Drop::ip_not_ours);
  bad = f;
  bad[kEthLen + 9] = 6;  // TCP: the kernel's business
  fix_ip_checksum(bad);
  EXPECT_EQ(classify(bad.data(), bad.size(), me()).verdict, Verdict::exception);
}

TEST(Packet, ArpRequestForUsGetsAReply) {
  std::vector<uint8_t> f(60, 0);
  Identity peer;
  peer.mac = kPeerMac;
  peer.ip = peer_ip();
  gratuitous_arp(f.data(), peer);  // a request from the peer...
  uint32_t our_ip = me().ip;
  std::memcpy(f.data() + kEthLen + 24, &our_ip, 4);  // ...asking for our address
  Classified c = classify(f.data(), f.size(), me());
  ASSERT_EQ(c.verdict, Verdict::arp_reply);
  size_t n = arp_reply_in_place(f.data(), f.size(), me());
  EXPECT_EQ(n, 60u);
  EXPECT_EQ(std::memcmp(f.data(), kPeerMac.data(), 6), 0);
  EXPECT_EQ(std::memcmp(f.data() + 6, kOurMac.data(), 6), 0);
  EXPECT_EQ(f[kEthLen + 7], 2);  // reply
  EXPECT_EQ(std::memcmp(f.data() + kEthLen + 8, kOurMac.data(), 6), 0);
  EXPECT_EQ(std::memcmp(f.data() + kEthLen + 18, kPeerMac.data(), 6), 0);
  uint32_t tpa;
  std::memcpy(&tpa, f.data() + kEthLen + 24, 4);
  EXPECT_EQ(tpa, peer_ip());
  // Our own gratuitous ARP, seen by us, is only learned from.
  std::vector<uint8_t> g(42);
  gratuitous_arp(g.data(), peer);
  EXPECT_EQ(classify(g.data(), g.size(), me()).verdict, Verdict::arp_learn);
}

TEST(Packet, IcmpEchoReplyHasValidChecksums) {
  // Echo request: IPv4 header + 8-byte ICMP header + 32 bytes of data.
  auto f = udp_frame(std::string(32, 'e'));
  f[kEthLen + 9] = 1;  // ICMP
  uint8_t* icmp = f.data() + kEthLen + kIpLen;
  std::memset(icmp, 0, 8);
  icmp[0] = 8;
  icmp[5] = 42;
  uint16_t s = static_cast<uint16_t>(~csum_fold(csum_partial(icmp, f.size() - kEthLen - kIpLen)));
  icmp[2] = static_cast<uint8_t>(s >> 8);
  icmp[3] = static_cast<uint8_t>(s);
  fix_ip_checksum(f);
  ASSERT_EQ(classify(f.data(), f.size(), me()).verdict, Verdict::icmp_echo);
  size_t n = icmp_echo_reply_in_place(f.data(), f.size());
  EXPECT_EQ(n, f.size());
  EXPECT_EQ(icmp[0], 0);
  EXPECT_EQ(csum_fold(csum_partial(f.data() + kEthLen, kIpLen)), 0xffff);
  EXPECT_EQ(csum_fold(csum_partial(icmp, f.size() - kEthLen - kIpLen)), 0xffff);
  uint32_t dst;
  std::memcpy(&dst, f.data() + kEthLen + 16, 4);
  EXPECT_EQ(dst, peer_ip());
}

// The word-at-a-time checksum against RFC 1071's definition (big-endian 16-bit words, an odd
// last byte padded with zero), at every length and alignment, with a carried-in sum.
TEST(Packet, ChecksumMatchesTheDefinitionAtEveryLengthAndAlignment) {
  auto reference = [](const uint8_t* p, size_t len, uint32_t sum) {
    uint64_t acc = sum;
    for (size_t i = 0; i + 1 < len; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (len & 1) acc += static_cast<uint32_t>(p[len - 1]) << 8;
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return static_cast<uint16_t>(acc);
  };
  const uint8_t rfc[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};  // RFC 1071 4.1
  EXPECT_EQ(csum_fold(csum_partial(rfc, sizeof rfc)), 0xddf2);
  std::vector<uint8_t> buf(300);
  uint32_t x = 12345;
  for (auto& b : buf) b = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);
  buf[20] = buf[21] = buf[22] = 0xff;  // runs of ones exercise the end-around carry
  for (size_t off = 0; off < 8; ++off)
    for (size_t len = 0; len + off <= buf.size(); ++len)
      for (uint32_t sum : {0u, 0x1234u, 0x3fffeu})
        ASSERT_EQ(csum_fold(csum_partial(buf.data() + off, len, sum)),
                  reference(buf.data() + off, len, sum))
            << "off " << off << " len " << len << " sum " << sum;
}

TEST(Packet, ParsesAddressesWithClearErrors) {
  uint32_t ip;
  unsigned prefix;
  std::string err;
  EXPECT_TRUE(parse_ipv4_cidr("10.9.0.2/24", &ip, &prefix, &err));
  EXPECT_EQ(ipv4_to_string(ip), "10.9.0.2");
  EXPECT_EQ(prefix, 24u);
  EXPECT_FALSE(parse_ipv4_cidr("10.9.0.300/24", &ip, &prefix, &err));
  EXPECT_NE(err.find("--dpdk-ip"), std::string::npos);
  EXPECT_FALSE(parse_ipv4_cidr("10.9.0.2/33", &ip, &prefix, &err));
  EXPECT_FALSE(parse_ipv4_cidr("10.9.0.2/", &ip, &prefix, &err));
}

}  // namespace
}  // namespace cachet::drivers::dpdk
