// The UDP policy every driver applies: the per-source rate, the reply bound, the drop counts.
#include "drivers/udp_policy.hh"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

namespace cachet::drivers {
namespace {

TEST(SrcLimiter, FloodFromOneSourceIsCutOthersPass) {
  constexpr uint64_t kTps = 1'000'000;  // ticks per second
  SrcLimiter lim(1000, kTps);           // 1000 packets/s, burst 132
  int passed = 0;
  for (int i = 0; i < 10000; ++i) passed += lim.allow(1, 10 + i);  // 10000 packets in 10 ms
  EXPECT_GE(passed, 132);
  EXPECT_LE(passed, 150);
  EXPECT_TRUE(lim.allow(2, 10'000));  // another source is unaffected
  // After a second the flooder has its rate again, not more than a burst.
  passed = 0;
  for (int i = 0; i < 1000; ++i) passed += lim.allow(1, 2 * kTps + i);
  EXPECT_GE(passed, 132);
  EXPECT_LE(passed, 140);
  SrcLimiter off(0, kTps);
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(off.allow(1, i));
}

UdpDropCounts counts(const UdpGuard& g) {
  UdpDropCounts c;
  g.add_to(c);
  return c;
}
uint64_t n(const UdpDropCounts& c, UdpDrop d) { return c.n[static_cast<size_t>(d)]; }

TEST(UdpGuard, RateLimitCountsItsDrops) {
  UdpGuard g(UdpPolicy{100, 1 << 20}, 1000);
  EXPECT_TRUE(g.limits_rate());
  int passed = 0;
  for (int i = 0; i < 500; ++i) passed += g.admit(7, 1);  // one clock reading: no refill
  EXPECT_EQ(passed, 100 / 10 + 32);
  EXPECT_EQ(n(counts(g), UdpDrop::rate_limited), 500u - passed);
  EXPECT_FALSE(UdpGuard(UdpPolicy{0, 1 << 20}, 1000).limits_rate());
}

TEST(UdpGuard, ReplyBoundCutsTheRestOfAReply) {
  UdpGuard g(UdpPolicy{0, 3000}, 1000);
  size_t sent = 0;
  EXPECT_TRUE(g.reply_fits(sent, 1400));
  EXPECT_TRUE(g.reply_fits(sent, 1400));
  EXPECT_FALSE(g.reply_fits(sent, 1400));  // 4200 > 3000
  EXPECT_FALSE(g.reply_fits(sent, 100));   // would fit, but the reply is cut already
  EXPECT_EQ(n(counts(g), UdpDrop::reply_cut), 2u);
  size_t next = 0;  // the next request has its own budget
  EXPECT_TRUE(g.reply_fits(next, 3000));
}

TEST(UdpGuard, CountsTheDataplanesReasonsAndSumsWorkers) {
  UdpGuard a(UdpPolicy{}, 1000), b(UdpPolicy{}, 1000);
  a.count(UdpDrop::frame_short);
  b.count(UdpDrop::frame_short);
  b.count(UdpDrop::frame_multipart);
  UdpDropCounts sum = counts(a);
  sum += counts(b);
  EXPECT_EQ(n(sum, UdpDrop::frame_short), 2u);
  EXPECT_EQ(n(sum, UdpDrop::frame_multipart), 1u);
  EXPECT_STREQ(udp_drop_name(UdpDrop::frame_multipart), "frame_multipart");
  EXPECT_STREQ(udp_drop_name(UdpDrop::reply_cut), "reply_cut");
}

TEST(UdpSourceKey, Ipv4IsTheAddressIpv6IsFolded) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x0a000001);
  EXPECT_EQ(udp_source_key(&a, sizeof a), htonl(0x0a000001));
  sockaddr_in6 b{}, c{};
  b.sin6_family = c.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "2001:db8::1", &b.sin6_addr);
  inet_pton(AF_INET6, "2001:db8::2", &c.sin6_addr);
  EXPECT_NE(udp_source_key(&b, sizeof b), udp_source_key(&c, sizeof c));
  EXPECT_EQ(udp_source_key(&a, 2), 0u);  // too short to be an address
}

}  // namespace
}  // namespace cachet::drivers
