// Server with binary connections: protocol chosen by the first byte, pipelines split at every
// byte boundary, too-large values swallowed without being buffered (replies held until then, as
// memcached), closing on bad input, and text connections unaffected.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dataplane/server.hh"
#include "dataplane/udp_frame.hh"
#include "tests/unit/dataplane/binary_helpers.hh"
#include "tests/unit/dataplane/server_helpers.hh"

namespace cachet::dataplane::testing {
namespace {

class BinaryServerTest : public ServerFixture {
 public:
  BinaryServerTest() : ServerFixture(1) {}
};

TEST_F(BinaryServerTest, PipelineSplitAtEveryByte) {
  const std::string big(9000, 'B');  // over the 8 KB item limit: refused and swallowed
  const std::string in = req(0x11, "a", set_extras(1, 0), "abc") + req(0x00, "a", {}, {}, 0, 1) +
                         req(0x01, "b", set_extras(0, 0), big) + req(0x0d, "a") + req(0x09, "zz") +
                         req(0x05, "n", delta_extras(2, 40, 0)) + req(0x14, "n") + req(0x14, "a") +
                         req(0x00, "a") + req(0x10, "sizes") + req(0x50) +
                         req(0x0a, {}, {}, {}, 0, 9);
  std::string expect;
  {
    Conn c(*server);
    c.feed(in);
    auto p = packets(c.sent);
    ASSERT_EQ(p.size(), 9u) << c.sent.size();
    expect = c.sent;
    EXPECT_EQ(p[0].op, 0x00);
    EXPECT_EQ(p[0].value, "abc");
    EXPECT_EQ(p[0].opaque, 1u);
    EXPECT_EQ(p[1].status, 3);  // Too large.
    EXPECT_EQ(p[2].key, "a");
    EXPECT_EQ(p[3].value, be64(40));
    EXPECT_EQ(p[4].status, 1);  // deleted by DELETEQ
    EXPECT_EQ(p[5].key, "sizes_status");
    EXPECT_EQ(p[6].key, "");  // the stat terminator
    EXPECT_EQ(p[7].status, 0x81);
    EXPECT_EQ(p[8].opaque, 9u);  // NOOP
    EXPECT_TRUE(c.pending.empty());
    EXPECT_FALSE(c.closed);
  }
  ASSERT_EQ(packets(expect).size(), 9u);
  for (size_t k = 1; k < in.size(); k += (k < 300 || k > in.size() - 300) ? 1 : 13) {
    Conn c(*server);
    c.feed(std::string_view(in).substr(0, k));
    c.feed(std::string_view(in).substr(k));
    std::string got = c.sent;
    // The delta's cas and the one stored item's cas move with every run: compare the rest.
    ASSERT_EQ(got.size(), expect.size()) << "split at " << k;
    auto a = packets(got), b = packets(expect);
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].op, b[i].op) << "split at " << k;
      ASSERT_EQ(a[i].status, b[i].status) << "split at " << k;
      ASSERT_EQ(a[i].value, b[i].value) << "split at " << k;
      ASSERT_EQ(a[i].key, b[i].key) << "split at " << k;
    }
  }
  Conn bytewise(*server);
  for (char ch : in) bytewise.feed(std::string_view(&ch, 1));
  EXPECT_EQ(packets(bytewise.sent).size(), 9u);
  EXPECT_LT(bytewise.max_pending, 100u);  // the refused 9000-byte value was never held
}

TEST_F(BinaryServerTest, SwallowHoldsRepliesUntilTheValueIsGone) {
  Conn c(*server);
  c.feed(req(0x0a, {}, {}, {}, 0, 1));
  EXPECT_EQ(c.sent, res(0x0a, 0, {}, {}, {}, 1));
  Req q{0x01, "k", set_extras(0, 0)};
  q.bodylen = 9 + 20000;
  c.feed(req(0x0a, {}, {}, {}, 0, 2) + q.bytes() + std::string(12000, 'x'));
  EXPECT_EQ(c.sent, res(0x0a, 0, {}, {}, {}, 1));  // nothing until the value is swallowed
  EXPECT_TRUE(c.pending.empty());
  c.feed(std::string(7999, 'x'));
  EXPECT_EQ(c.sent, res(0x0a, 0, {}, {}, {}, 1));
  c.feed("x" + req(0x0a, {}, {}, {}, 0, 3));
  EXPECT_EQ(c.sent, res(0x0a, 0, {}, {}, {}, 1) + res(0x0a, 0, {}, {}, {}, 2) +
                        err(0x01, 3, "Too large.") + res(0x0a, 0, {}, {}, {}, 3));
  EXPECT_FALSE(c.closed);
}

TEST_F(BinaryServerTest, BadInputCloses) {
  {
    // Wrong magic after a request: that request is answered, then the connection closes.
    Conn c(*server);
    Req bad{0x0a};
    bad.magic = 0x81;
    c.feed(req(0x0a) + bad.bytes() + req(0x0a));
    EXPECT_EQ(c.sent, res(0x0a, 0));
    EXPECT_TRUE(c.closed);
  }
  {
    // A text line on a binary connection is the wrong magic too.
    Conn c(*server);
    c.feed(req(0x0a) + "get foo\r\n" + std::string(20, 'x'));
    EXPECT_EQ(c.sent, res(0x0a, 0));
    EXPECT_TRUE(c.closed);
  }
  {
    Conn c(*server);
    c.feed(req(0x00, std::string(251, 'k')) + req(0x0a));
    EXPECT_EQ(c.sent, err(0x00, 4, "Invalid arguments"));
    EXPECT_TRUE(c.closed);
  }
  {
    // A key too long for memcached's 16 KB read buffer: closed without a reply once it is full,
    // and never buffered past it.
    Conn c(*server);
    std::string big = req(0x00, std::string(60000, 'k'));
    c.feed(big.substr(0, 16000));
    EXPECT_FALSE(c.closed);
    c.feed(big.substr(16000, 1000));
    EXPECT_TRUE(c.closed);
    EXPECT_EQ(c.sent, "");
  }
  {
    Conn c(*server);
    c.feed(req(0x07) + req(0x0a));
    EXPECT_EQ(c.sent, res(0x07, 0));
    EXPECT_TRUE(c.closed);
  }
}

TEST_F(BinaryServerTest, ProtocolIsChosenPerConnection) {
  Conn bin(*server), text(*server);
  text.feed("set k 0 0 1\r\nv\r\n");
  bin.feed(req(0x00, "k"));
  EXPECT_EQ(text.sent, "STORED\r\n");
  auto p = packets(bin.sent);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].value, "v");
  // The first byte decides for good: 0x80 later on a text connection is no binary request (the
  // NOOP's opcode 0x0a is a newline: two junk lines).
  text.feed(req(0x0a) + "\r\nversion\r\n");
  EXPECT_EQ(text.sent, "STORED\r\nERROR\r\nERROR\r\nVERSION 1.6.18-cachet-0.1.0\r\n");
  // An empty first read decides nothing.
  Conn late(*server);
  late.feed("");
  late.feed(req(0x0b));
  EXPECT_EQ(packets(late.sent).size(), 1u);
  // Both protocols count into the same stats.
  text.feed("stats\r\n");
  EXPECT_NE(text.sent.find("STAT cmd_get 1\r\n"), std::string::npos);
  EXPECT_NE(text.sent.find("STAT get_hits 1\r\n"), std::string::npos);
}

TEST_F(BinaryServerTest, RandomInputNeverBreaksTheServer) {
  // Random opcodes, header lengths, cas and bodies (a fixed seed), fed in random pieces: every
  // connection either keeps answering or closes, input stays bounded, the store stays usable.
  std::mt19937 rng(12345);
  auto pick = [&rng](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  for (int round = 0; round < 300; ++round) {
    Conn c(*server);
    std::string in;
    for (int i = 0; i < 8; ++i) {
      Req q{static_cast<uint8_t>(pick(4) == 0 ? pick(256) : pick(0x25))};
      q.key = std::string(pick(4) == 0 ? pick(300) : pick(12), 'k');
      q.extras = std::string(pick(3) == 0 ? pick(24) : 0, '\1');
      q.value = std::string(pick(3) == 0 ? pick(10000) : pick(20), 'v');
      q.cas = pick(3) == 0 ? pick(5) : 0;
      if (pick(8) == 0) q.keylen = static_cast<uint16_t>(pick(65536));
      if (pick(8) == 0) q.extlen = static_cast<uint8_t>(pick(256));
      if (pick(8) == 0) q.bodylen = pick(4) == 0 ? rng() : pick(64);
      if (pick(50) == 0) q.magic = static_cast<uint8_t>(pick(256));
      in += q.bytes();
    }
    for (size_t pos = 0; pos < in.size() && !c.closed;) {
      size_t n = std::min<size_t>(in.size() - pos, 1 + pick(3000));
      c.feed(std::string_view(in).substr(pos, n));
      pos += n;
    }
    ASSERT_LT(c.max_pending, 20000u) << "round " << round;
  }
  Conn ok(*server);
  ok.feed(req(0x01, "after", set_extras(0, 0), "fine") + req(0x00, "after"));
  auto p = packets(ok.sent);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[1].value, "fine");
}


TEST_F(BinaryServerTest, DatagramsSpeakBinaryToo) {
  // memcached picks the protocol of each datagram by its first byte.
  Sink s;
  server->datagram(0,
                   dgram(5, req(0x11, "t", set_extras(2, 0), "val") + req(0x09, "zz") +
                                req(0x00, "t", {}, {}, 0, 4) + req(0x50) + req(0x0a)),
                   s);
  ASSERT_EQ(s.got.size(), 1u);
  EXPECT_EQ(s.got[0].substr(0, udp::kHeaderSize), dgram(5, ""));
  auto p = packets(std::string_view(s.got[0]).substr(udp::kHeaderSize));
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].value, "val");
  EXPECT_EQ(p[0].opaque, 4u);
  EXPECT_EQ(p[1].status, 0x81);
  EXPECT_EQ(p[2].op, 0x0a);
  // A text datagram next to it is still text; a truncated binary request is dropped.
  s.got.clear();
  server->datagram(0, dgram(6, "get t\r\n"), s);
  server->datagram(0, dgram(7, req(0x00, "t").substr(0, 20)), s);
  ASSERT_EQ(s.got.size(), 1u);
  EXPECT_EQ(s.got[0], dgram(6, "VALUE t 2 3\r\nval\r\nEND\r\n"));
}

}  // namespace
}  // namespace cachet::dataplane::testing
