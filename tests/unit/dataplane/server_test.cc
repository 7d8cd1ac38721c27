// Server as drivers see it: pipelined stream input split at every byte boundary, swallowing of
// refused data blocks without buffering them, connection closing rules, the output limit, driver
// counters in `stats`, and UDP datagrams with memcached's frame header.
#include "dataplane/server.hh"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "dataplane/udp_frame.hh"
#include "tests/unit/dataplane/helpers.hh"
#include "tests/unit/dataplane/server_helpers.hh"

namespace cachet::dataplane {
namespace {

class ServerTest : public testing::ServerFixture {
 public:
  ServerTest() : ServerFixture(2) {}
};

using testing::dgram;
using testing::Sink;

std::string get_reply(const std::string& key, const std::string& value) {
  return "VALUE " + key + " 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\nEND\r\n";
}

TEST_F(ServerTest, PipelineSplitAtEveryByte) {
  const std::string big(9000, 'B');  // larger than the 8 KB item limit: refused and swallowed
  const std::string in = "set a 0 0 3\r\nabc\r\nget a\r\nset b 0 0 1\r\nz\r\nset b 0 0 9000\r\n" +
                         big + "\r\nget a b\r\nincr x 1\r\ndelete a noreply\r\nget a\r\n" +
                         "set c 0 0 3\r\nbarx\r\nversion\r\n";
  const std::string expect =
      "STORED\r\n" + get_reply("a", "abc") +
      "STORED\r\nSERVER_ERROR object too large for cache\r\n" +
      "VALUE a 0 3\r\nabc\r\nEND\r\nNOT_FOUND\r\nEND\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\n"
      "VERSION 1.6.18-cachet-0.1.0\r\n";
  {
    Conn c(*server, 0);
    c.feed(in);
    EXPECT_EQ(c.sent, expect);
    EXPECT_TRUE(c.pending.empty());
    EXPECT_FALSE(c.closed);
  }
  for (size_t k = 1; k < in.size(); k += (k < 200 || k > in.size() - 200) ? 1 : 7) {
    Conn c(*server, k % 2);
    c.feed(std::string_view(in).substr(0, k));
    c.feed(std::string_view(in).substr(k));
    ASSERT_EQ(c.sent, expect) << "split at " << k;
  }
  Conn bytewise(*server, 1);
  size_t max_pending = 0;
  for (char ch : in) {
    bytewise.feed(std::string_view(&ch, 1));
    max_pending = std::max(max_pending, bytewise.pending.size());
  }
  EXPECT_EQ(bytewise.sent, expect);
  EXPECT_LT(max_pending, 100u);  // the refused 9000-byte block was never held
}

TEST_F(ServerTest, SwallowDoesNotBufferAndHoldsReplies) {
  Conn c(*server, 0);
  c.feed("set k 0 0 1\r\nv\r\n");
  EXPECT_EQ(c.sent, "STORED\r\n");
  // As memcached: nothing is sent until the refused block has been read, the replies of the
  // requests before it in the same read included.
  c.feed("get k\r\nset k 0 0 20000\r\n" + std::string(12000, 'x'));
  EXPECT_EQ(c.sent, "STORED\r\n");
  EXPECT_TRUE(c.pending.empty());
  c.feed(std::string(7000, 'x'));
  EXPECT_EQ(c.sent, "STORED\r\n");
  EXPECT_TRUE(c.pending.empty());
  c.feed(std::string(1000, 'x') + "\r");
  EXPECT_EQ(c.sent, "STORED\r\n");
  c.feed("\nget k\r\n");
  EXPECT_EQ(c.sent, "STORED\r\n" + get_reply("k", "v") +
                        "SERVER_ERROR object too large for cache\r\nEND\r\n");
  // A block that arrives whole is answered at once.
  c.feed("set k 0 0 20000\r\n" + std::string(20000, 'x') + "\r\nversion\r\n");
  EXPECT_EQ(c.sent.substr(c.sent.size() - 70),
            "SERVER_ERROR object too large for cache\r\nVERSION 1.6.18-cachet-0.1.0\r\n");
}

TEST_F(ServerTest, ClosingRules) {
  {
    Conn c(*server, 0);
    c.feed("version\r\nquit\r\nversion\r\n");
    EXPECT_EQ(c.sent, "VERSION 1.6.18-cachet-0.1.0\r\n");
    EXPECT_TRUE(c.closed);
  }
  {
    Conn c(*server, 0);
    c.feed(std::string(2048, 'x'));
    EXPECT_FALSE(c.closed);
    c.feed("x");
    EXPECT_TRUE(c.closed);
  }
  {
    Conn c(*server, 0);
    c.feed("GET / HTTP/1.1\r\n");
    EXPECT_TRUE(c.closed);
    EXPECT_EQ(c.sent, "");
  }
  {
    // A multiget line may grow past 2 KB, but not past the item limit + 2 KB.
    Conn c(*server, 0);
    c.feed("get " + std::string(8000, 'k'));
    EXPECT_FALSE(c.closed);
    c.feed(std::string(2300, 'k'));
    EXPECT_TRUE(c.closed);
  }
  {
    // A storage command waiting for the largest accepted block stays open.
    Conn c(*server, 0);
    size_t max = store->value_max(1);
    c.feed("set k 0 0 " + std::to_string(max) + "\r\n" + std::string(max, 'v'));
    EXPECT_FALSE(c.closed);
    c.feed("\r\n");
    EXPECT_EQ(c.sent, "STORED\r\n");
  }
}

TEST_F(ServerTest, StopsAtTheOutputLimit) {
  settings.net.out_limit = 100;
  Conn c(*server, 0);
  c.feed("set a 0 0 10\r\n0123456789\r\n");
  std::string in;
  for (int i = 0; i < 20; ++i) in += "get a\r\n";
  common::ByteBuf out;
  drivers::StreamStep st = server->stream_data(c.state, in, out);
  EXPECT_LT(st.consumed, in.size());
  EXPECT_GE(out.size(), 100u);
  EXPECT_EQ(out.size() % get_reply("a", "0123456789").size(), 0u);  // whole replies only
  c.feed(in);
  std::string expect = "STORED\r\n";
  for (int i = 0; i < 20; ++i) expect += get_reply("a", "0123456789");
  EXPECT_EQ(c.sent, expect);
}

// A short get naming a large item many times never holds more than the output limit plus one
// item: it stops there, unconsumed and not idle (no hand-over mid-reply), and goes on from the
// next key once the output has drained; the bytes are memcached's single reply.
TEST_F(ServerTest, AManyKeyGetStopsAtTheOutputLimitAndGoesOn) {
  settings.net.out_limit = 8 << 10;
  Conn c(*server, 0);
  const std::string value(2000, 'v');
  c.feed("set big 0 0 2000\r\n" + value + "\r\n");
  ASSERT_EQ(c.sent, "STORED\r\n");
  std::string line = "get";
  for (int i = 0; i < 40; ++i) line += " big";
  line += "  missing \r\n";
  std::string expect;
  for (int i = 0; i < 40; ++i) expect += "VALUE big 0 2000\r\n" + value + "\r\n";
  expect += "END\r\n";
  const size_t block = expect.find("VALUE", 1);
  std::string sent;
  common::ByteBuf out;
  int calls = 0;
  while (true) {
    drivers::StreamStep st = server->stream_data(c.state, line, out);
    ++calls;
    EXPECT_LE(out.size(), settings.net.out_limit + block);
    sent.append(out.view());
    out.clear();
    if (st.consumed == line.size()) break;
    ASSERT_EQ(st.consumed, 0u);
    EXPECT_FALSE(server->stream_idle(c.state));
    ASSERT_LT(calls, 100);
  }
  // Five blocks of 2,020 bytes to a call (the fifth takes out past 8 KB), then the miss and END.
  EXPECT_EQ(calls, 9);
  EXPECT_EQ(sent, expect);
  EXPECT_TRUE(server->stream_idle(c.state));
  // The same through a driver's loop, with a request behind it.
  c.sent.clear();
  c.feed(line + "get big\r\n");
  EXPECT_EQ(c.sent, expect + get_reply("big", value));
}

class FakeDriver : public drivers::Driver {
 public:
  bool open(std::string*) override { return true; }
  void run(drivers::Handler&) override {}
  void stop() override {}
  unsigned workers() const override { return 1; }
  drivers::DriverStats stats() const override {
    drivers::DriverStats s;
    s.curr_connections = 3;
    s.total_connections = 7;
    s.bytes_read = 1234;
    return s;
  }
  void extra_stats(std::vector<std::pair<std::string, uint64_t>>& out) const override {
    out.emplace_back("uring_sqe_full", 5);
  }
};

TEST_F(ServerTest, StatsSumWorkersAndShowDriverCounters) {
  FakeDriver d;
  server->add_driver(&d);
  Conn a(*server, 0), b(*server, 1);
  a.feed("get x y\r\n");
  b.feed("get z\r\nstats\r\n");
  EXPECT_EQ(testing::stat_value(b.sent, "cmd_get"), "3");
  EXPECT_EQ(testing::stat_value(b.sent, "curr_connections"), "3");
  EXPECT_EQ(testing::stat_value(b.sent, "total_connections"), "7");
  EXPECT_EQ(testing::stat_value(b.sent, "bytes_read"), "1234");
  EXPECT_EQ(testing::stat_value(b.sent, "threads"), "2");
  // The driver's own counters come last.
  EXPECT_NE(b.sent.find("STAT crawler_items_checked 0\r\nSTAT crash_dropped 0\r\n"
                        "STAT hidden_items 0\r\n"),
            std::string::npos);
  EXPECT_NE(b.sent.find("STAT udp_drop_reply_cut 0\r\nSTAT uring_sqe_full 5\r\nEND\r\n"),
            std::string::npos);
}


// A second driver beside the first (DPDK's lcore beside the kernel path): worker 1 is its
// lcore 0, and it prints per-worker lines.
class FakeBypass : public FakeDriver {
 public:
  void extra_stats(std::vector<std::pair<std::string, uint64_t>>&) const override {}
  drivers::DriverStats stats() const override {
    drivers::DriverStats s;
    s.bytes_read = 100;
    s.datagrams_in = 9;
    s.udp_drops.n[static_cast<size_t>(drivers::UdpDrop::rate_limited)] = 4;
    return s;
  }
  std::string worker_stats_prefix(unsigned w) const override {
    return "bypass:lcore" + std::to_string(w) + ":";
  }
};

TEST_F(ServerTest, StatsSumEveryDriver) {
  FakeDriver kernel;
  FakeBypass bypass;
  server->add_driver(&kernel, 0);
  server->add_driver(&bypass, 1);
  Conn a(*server, 0), b(*server, 1);
  a.feed("get x\r\n");
  b.feed("get y z\r\nstats\r\n");
  EXPECT_EQ(testing::stat_value(b.sent, "curr_connections"), "3");  // the kernel path's TCP
  EXPECT_EQ(testing::stat_value(b.sent, "bytes_read"), "1334");     // both drivers
  EXPECT_EQ(testing::stat_value(b.sent, "udp_datagrams_in"), "9");
  EXPECT_EQ(testing::stat_value(b.sent, "udp_drop_rate_limited"), "4");
  EXPECT_EQ(testing::stat_value(b.sent, "uring_sqe_full"), "5");
  EXPECT_EQ(testing::stat_value(b.sent, "bypass:lcore0:get_misses"), "2");  // worker 1's
}

udp::FrameHeader header_of(const std::string& d) {
  auto get = [&](size_t i) {
    return static_cast<uint16_t>(static_cast<uint8_t>(d[i]) << 8 | static_cast<uint8_t>(d[i + 1]));
  };
  return {get(0), get(2), get(4), get(6)};
}

TEST_F(ServerTest, DatagramsSmallReplies) {
  Sink s;
  server->datagram(0, dgram(0x1234, "version\r\n"), s);
  ASSERT_EQ(s.got.size(), 1u);
  EXPECT_EQ(s.got[0], dgram(0x1234, "VERSION 1.6.18-cachet-0.1.0\r\n"));

  // memcached drops multi-datagram requests and datagrams without a request, and says why.
  using drivers::UdpDrop;
  s.got.clear();
  EXPECT_EQ(server->datagram(0, dgram(1, "version\r\n", 0, 2), s), UdpDrop::frame_multipart);
  EXPECT_EQ(server->datagram(0, dgram(1, "version\r\n", 0, 0), s), UdpDrop::frame_multipart);
  EXPECT_EQ(server->datagram(0, dgram(1, ""), s), UdpDrop::frame_short);
  EXPECT_EQ(server->datagram(0, std::string("\0\1\0\0\0\1\0", 7), s), UdpDrop::frame_short);
  // Requests that need no reply are still requests.
  EXPECT_EQ(server->datagram(0, dgram(1, "get v"), s), UdpDrop::none);  // incomplete: no reply
  EXPECT_EQ(server->datagram(0, dgram(1, "set v 0 0 1 noreply\r\nx\r\n"), s), UdpDrop::none);
  EXPECT_EQ(server->datagram(0, dgram(1, "quit\r\n"), s), UdpDrop::none);
  EXPECT_TRUE(s.got.empty());

  // The reserved field is not checked either (memcached ignores it).
  std::string reserved = dgram(3, "version\r\n");
  reserved[6] = '\x12';
  reserved[7] = '\x34';
  EXPECT_EQ(server->datagram(0, reserved, s), UdpDrop::none);
  ASSERT_EQ(s.got.size(), 1u);
  EXPECT_EQ(header_of(s.got[0]).reserved, 0);
  s.got.clear();

  // The sequence number of a request is not checked; the request id comes back as sent.
  server->datagram(1, dgram(0xfffe, "get v\r\n", 5), s);
  ASSERT_EQ(s.got.size(), 1u);
  EXPECT_EQ(s.got[0], dgram(0xfffe, get_reply("v", "x")));
}

TEST_F(ServerTest, DatagramsSplitLargeReplies) {
  Sink s;
  const std::string value(3000, 'y');
  server->datagram(0, dgram(7, "set u 0 0 3000\r\n" + value + "\r\n"), s);
  ASSERT_EQ(s.got.size(), 1u);
  EXPECT_EQ(s.got[0], dgram(7, "STORED\r\n"));
  s.got.clear();
  server->datagram(0, dgram(7, "get u\r\n"), s);
  // 3023 reply bytes: 1392 + 1392 + 239, as memcached 1.6.18 sends them.
  ASSERT_EQ(s.got.size(), 3u);
  std::string joined;
  for (size_t i = 0; i < s.got.size(); ++i) {
    udp::FrameHeader h = header_of(s.got[i]);
    EXPECT_EQ(h.request_id, 7);
    EXPECT_EQ(h.sequence, i);
    EXPECT_EQ(h.total, 3);
    EXPECT_EQ(h.reserved, 0);
    EXPECT_LE(s.got[i].size(), udp::kMaxDatagram);
    joined += s.got[i].substr(udp::kHeaderSize);
  }
  EXPECT_EQ(s.got[0].size(), 1400u);
  EXPECT_EQ(s.got[2].size(), 247u);
  EXPECT_EQ(joined, get_reply("u", value));
}

// The burst prefetch is a hint: whatever the datagrams hold (more keys than it follows, keys
// over the limit, other commands, junk, a stage 1 with no stage 0 before it, a stage 0 never
// followed up), answers are the same as without it.
TEST_F(ServerTest, PrefetchNeverChangesAnswers) {
  std::string many = "get";
  for (int i = 0; i < 40; ++i) many += " k" + std::to_string(i);
  const std::vector<std::string> burst = {
      dgram(1, "set k3 0 0 2\r\nv3\r\n"), dgram(2, many + "\r\n"),
      dgram(3, "get " + std::string(300, 'x') + " k3\r\n"), dgram(4, "get k3  k3\r\n"),
      dgram(5, "delete k9\r\n"), dgram(6, "incr k3 1\r\n"), dgram(7, "get"), dgram(8, ""),
      std::string("\0\1", 2), dgram(9, "get \r\n"), dgram(10, "touch k3 0\r\n")};
  auto answers = [&](int stages) {
    std::vector<std::string_view> views(burst.begin(), burst.end());
    if (stages & 1) server->prefetch(0, views, 0);
    if (stages & 2) server->prefetch(0, views, 1);
    Sink s;
    for (const std::string& d : burst) server->datagram(0, d, s);
    server->datagram(0, dgram(11, "delete k3\r\n"), s);  // the next round starts alike
    return s.got;
  };
  const std::vector<std::string> plain = answers(0);
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(answers(3), plain);
  EXPECT_EQ(answers(2), plain);
  EXPECT_EQ(answers(1), plain);
  EXPECT_EQ(answers(3), plain);
}

}  // namespace
}  // namespace cachet::dataplane
