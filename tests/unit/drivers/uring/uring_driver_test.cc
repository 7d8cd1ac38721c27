// Loopback tests of the io_uring driver with a small line-echo Handler and plain sockets,
// in both receive modes (multishot with provided buffers, and the single-shot fall-back).
#include "drivers/uring/uring_driver.hh"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cachet::drivers {
namespace {

using namespace std::chrono_literals;

// Lines in, lines out: "<text>" echoes, "quit" closes, "big N TAG" answers N bytes of TAG then
// a newline. Datagrams echo; "two X" echoes twice.
class LineHandler final : public Handler {
 public:
  explicit LineHandler(size_t out_limit) : out_limit_(out_limit) {}

  void worker_start(unsigned worker) override { started_mask |= 1u << worker; }
  void* stream_open(unsigned, bool) override {
    ++opens;
    return new int(0);
  }
  StreamStep stream_data(void*, std::string_view in, common::ByteBuf& out) override {
    ++calls;
    if (out.size() >= out_limit_) ++calls_over_limit;
    StreamStep st;
    while (out.size() < out_limit_) {
      size_t nl = in.find('\n', st.consumed);
      if (nl == std::string_view::npos) {
        if (st.consumed == 0) ++partial_calls;
        break;
      }
      std::string_view line = in.substr(st.consumed, nl - st.consumed);
      st.consumed = nl + 1;
      if (line == "quit") {
        st.close = true;
        break;
      }
      if (line.substr(0, 4) == "big ") {
        size_t sp = line.find(' ', 4);
        size_t n = std::stoul(std::string(line.substr(4, sp - 4)));
        std::string_view tag = line.substr(sp + 1);
        char* p = out.prepare(n + 1);
        for (size_t i = 0; i < n; ++i) p[i] = tag[i % tag.size()];
        p[n] = '\n';
        out.commit(n + 1);
        continue;
      }
      out.append(line);
      out.push_back('\n');
    }
    return st;
  }
  void stream_close(void* state) override {
    delete static_cast<int*>(state);
    ++closes;
  }
  UdpDrop datagram(unsigned, std::string_view in, DatagramSink& reply) override {
    if (in.substr(0, 4) == "drop") return UdpDrop::frame_short;
    reply.emit(in.substr(0, 2), in.substr(2));
    if (in.substr(0, 4) == "two ") reply.emit({}, in);
    return UdpDrop::none;
  }

  std::atomic<unsigned> started_mask{0};
  std::atomic<int> opens{0}, closes{0};
  std::atomic<uint64_t> calls{0}, partial_calls{0}, calls_over_limit{0};

 private:
  size_t out_limit_;
};

// A driver running on its own thread for the life of the object.
class Running {
 public:
  Running(DriverOptions o, UringOptions u) : handler(o.out_limit), driver(o, u) {
    ok = driver.open(&error);
    if (ok) thread = std::thread([this] { driver.run(handler); });
  }
  ~Running() { finish(); }
  void finish() {
    driver.stop();
    if (thread.joinable()) thread.join();
  }

  LineHandler handler;
  UringDriver driver;
  std::thread thread;
  std::string error;
  bool ok = false;
};

int connect_tcp(uint16_t port, const char* addr = "127.0.0.1") {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, addr, &sa.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    s.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads exactly n bytes (less on EOF, error or the 5 s timeout).
std::string read_n(int fd, size_t n) {
  std::string s(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, s.data() + got, n - got, 0);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  s.resize(got);
  return s;
}

std::string read_to_eof(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) break;
    s.append(buf, static_cast<size_t>(r));
  }
  return s;
}

template <class F>
bool wait_for(F cond, std::chrono::milliseconds limit = 3000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

uint16_t free_port(int type) {
  int fd = socket(AF_INET, type, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
}

DriverOptions base_options() {
  DriverOptions o;
  o.listen = "127.0.0.1";
  o.tcp_port = 0;
  o.udp_port = 0;
  o.threads = 2;
  o.pin_threads = false;
  return o;
}

class UringDriverTest : public ::testing::TestWithParam<bool> {
 protected:
  UringOptions uopts() const {
    UringOptions u;
    u.force_single_shot = GetParam();
    u.tcp_any_port = true;
    return u;
  }
};

TEST_P(UringDriverTest, ReportsTheModeItRuns) {
  Running r(base_options(), uopts());
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_NE(r.driver.tcp_port_bound(), 0);
  EXPECT_EQ(r.driver.udp_port_bound(), 0);  // UDP off
  EXPECT_EQ(r.driver.workers(), 2u);
  if (GetParam()) {
    EXPECT_FALSE(r.driver.features().multishot);
  }
  std::printf("kernel features: multishot=%d taskrun=%s\n", r.driver.features().multishot,
              r.driver.features().taskrun);
  EXPECT_TRUE(wait_for([&] { return r.handler.started_mask.load() == 3u; }))
      << "worker_start on each of the 2 workers";
}

TEST_P(UringDriverTest, PipelinedRepliesKeepOrder) {
  Running r(base_options(), uopts());
  ASSERT_TRUE(r.ok) << r.error;
  int fd = connect_tcp(r.driver.tcp_port_bound());
  ASSERT_GE(fd, 0);
  std::string req;
  for (int i = 0; i < 3000; ++i) req += "line " + std::to_string(i) + "\n";
  ASSERT_TRUE(send_all(fd, req));  // one write: many requests per receive
  EXPECT_EQ(read_n(fd, req.size()), req);
  close(fd);
  EXPECT_TRUE(wait_for([&] { return r.handler.closes.load() == 1; }));
  DriverStats st = r.driver.stats();
  EXPECT_EQ(st.bytes_read, req.size());
  EXPECT_EQ(st.bytes_written, req.size());
  EXPECT_EQ(st.total_connections, 1u);
  EXPECT_EQ(st.curr_connections, 0u);
}

TEST_P(UringDriverTest, RequestArrivingByteByByte) {
  Running r(base_options(), uopts());
  ASSERT_TRUE(r.ok) << r.error;
  int fd = connect_tcp(r.driver.tcp_port_bound());
  ASSERT_GE(fd, 0);
  const std::string req = "hello, byte by byte\nsecond\n";
  for (char ch : req) {
    ASSERT_TRUE(send_all(fd, std::string_view(&ch, 1)));
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(read_n(fd, req.size()), req);
  EXPECT_GT(r.handler.partial_calls.load(), 0u) << "incomplete input must be offered and kept";
  close(fd);
}

TEST_P(UringDriverTest, ManyConnections) {
  Running r(base_options(), uopts());
  ASSERT_TRUE(r.ok) << r.error;
  constexpr int kConns = 200;
  std::vector<int> fds;
  for (int i = 0; i < kConns; ++i) {
    fds.push_back(connect_tcp(r.driver.tcp_port_bound()));
    ASSERT_GE(fds.back(), 0);
  }
  for (int i = 0; i < kConns; ++i) ASSERT_TRUE(send_all(fds[i], "c" + std::to_string(i) + "\n"));
  for (int i = 0; i < kConns; ++i) {
    std::string want = "c" + std::to_string(i) + "\n";
    errno = 0;
    EXPECT_EQ(read_n(fds[i], want.size()), want) << "connection " << i << ": " << std::strerror(errno);
  }
  EXPECT_EQ(r.driver.stats().curr_connections, uint64_t{kConns});
  for (int fd : fds) close(fd);
  EXPECT_TRUE(wait_for([&] { return r.driver.stats().curr_connections == 0; }));
  EXPECT_EQ(r.handler.opens.load(), kConns);
  EXPECT_EQ(r.handler.closes.load(), kConns);
}

TEST_P(UringDriverTest, MaxConnsRejectsLikeMemcached) {
  DriverOptions o = base_options();
  o.max_conns = 2;
  Running r(o, uopts());
  ASSERT_TRUE(r.ok) << r.error;
  int a = connect_tcp(r.driver.tcp_port_bound());
  int b = connect_tcp(r.driver.tcp_port_bound());
  ASSERT_TRUE(send_all(a, "a\n") && send_all(b, "b\n"));
  EXPECT_EQ(read_n(a, 2), "a\n");
  EXPECT_EQ(read_n(b, 2), "b\n");
  int c = connect_tcp(r.driver.tcp_port_bound());
  ASSERT_GE(c, 0);
  EXPECT_EQ(read_to_eof(c), "ERROR Too many open connections\r\n");
  close(c);
  EXPECT_EQ(r.driver.stats().rejected_connections, 1u);
  EXPECT_EQ(r.handler.opens.load(), 2);

  close(a);  // a slot frees up
  ASSERT_TRUE(wait_for([&] { return r.driver.stats().curr_connections == 1; }));
  int d = connect_tcp(r.driver.tcp_port_bound());
  ASSERT_TRUE(send_all(d, "d\n"));
  EXPECT_EQ(read_n(d, 2), "d\n");
  close(b);
  close(d);
}

TEST_P(UringDriverTest, HandlerCloseSendsRepliesFirst) {
  Running r(base_options(), uopts());
  ASSERT_TRUE(r.ok) << r.error;
  int fd = connect_tcp(r.driver.tcp_port_bound());
  ASSERT_TRUE(send_all(fd, "a\nbig 100000 z\nquit\nnever\n"));
  std::string got = read_to_eof(fd);
  EXPECT_EQ(got, "a\n" + std::string(100000, 'z') + "\n");
  close(fd);
  EXPECT_TRUE(wait_for([&] { return r.handler.closes.load() == 1; }));
}

TEST_P(UringDriverTest, HalfClosedClientStillGetsReplies) {
  Running r(base_options(), uopts());
  ASSERT_TRUE(r.ok) << r.error;
  int fd = connect_tcp(r.driver.tcp_port_bound());
  ASSERT_TRUE(send_all(fd, "x\ny\npartial"));
  shutdown(fd, SHUT_WR);
  EXPECT_EQ(read_to_eof(fd), "x\ny\n");
  close(fd);
  EXPECT_TRUE(wait_for([&] { return r.handler.closes.load() == 1; }));
}

// A client that sends much and reads nothing: the driver stops feeding at out_limit, stops
// receiving past in_limit, and loses nothing once the client reads.
TEST_P(UringDriverTest, BackPressureBoundsBuffersAndKeepsOrder) {
  DriverOptions o = base_options();
  o.out_limit = 64 * 1024;
  o.in_limit = 16 * 1024;
  Running r(o, uopts());
  ASSERT_TRUE(r.ok) << r.error;
  int fd = connect_tcp(r.driver.tcp_port_bound());
  constexpr int kReqs = 60000;
  std::string req, want;
  for (int i = 0; i < kReqs; ++i) {
    std::string tag = std::to_string(i) + ";";
    req += "big 1000 " + tag + "\n";
    for (size_t k = 0; k < 1000; ++k) want += tag[k % tag.size()];
    want += '\n';
  }
  std::thread writer([&] { send_all(fd, req); });
  std::this_thread::sleep_for(300ms);
  uint64_t read_while_stalled = r.driver.stats().bytes_read;
  EXPECT_LT(read_while_stalled, req.size()) << "receiving must pause while replies pile up";
  std::string got = read_n(fd, want.size());
  writer.join();
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "replies out of order or corrupted";
  EXPECT_EQ(r.handler.calls_over_limit.load(), 0u) << "handler fed while out >= out_limit";
  EXPECT_EQ(r.driver.stats().bytes_read, req.size());
  close(fd);
}

// One request larger than in_limit must not stall: the handler waits on it, so the driver
// keeps receiving.
TEST_P(UringDriverTest, RequestLargerThanInLimit) {
  DriverOptions o = base_options();
  o.in_limit = 16 * 1024;
  Running r(o, uopts());
  ASSERT_TRUE(r.ok) << r.error;
  int fd = connect_tcp(r.driver.tcp_port_bound());
  std::string line(300000, 'q');
  line += '\n';
  ASSERT_TRUE(send_all(fd, line));
  EXPECT_EQ(read_n(fd, line.size()), line);
  close(fd);
}

// A UDP socket connected to 127.0.0.1:port, receives time out after 5 s; -1 on failure.
int connect_udp(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST_P(UringDriverTest, UdpRoundTrip) {
  DriverOptions o = base_options();
  UringOptions u = uopts();
  u.udp_any_port = true;
  Running r(o, u);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_NE(r.driver.udp_port_bound(), 0);
  int fd = connect_udp(r.driver.udp_port_bound());
  ASSERT_GE(fd, 0);
  char buf[2048];
  for (int i = 0; i < 50; ++i) {
    std::string msg = "ping " + std::to_string(i);
    ASSERT_EQ(send(fd, msg.data(), msg.size(), 0), ssize_t(msg.size()));
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    ASSERT_EQ(std::string(buf, n > 0 ? size_t(n) : 0), msg);
  }
  ASSERT_EQ(send(fd, "two x", 5, 0), 5);
  for (int k = 0; k < 2; ++k) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    EXPECT_EQ(std::string(buf, n > 0 ? size_t(n) : 0), "two x");
  }
  // A datagram the handler refuses is counted by its reason, and not answered.
  ASSERT_EQ(send(fd, "drop me", 7, 0), 7);
  EXPECT_TRUE(wait_for([&] {
    return r.driver.stats().udp_drops.n[static_cast<size_t>(UdpDrop::frame_short)] == 1u;
  }));
  close(fd);
  DriverStats st = r.driver.stats();
  EXPECT_EQ(st.datagrams_in, 52u);
  EXPECT_TRUE(wait_for([&] { return r.driver.stats().datagrams_out == 52u; }));
}

TEST_P(UringDriverTest, UdpPolicyBoundsRepliesAndRate) {
  DriverOptions o = base_options();
  o.threads = 1;  // one source meets one bucket
  o.udp_policy = UdpPolicy{1, 6};  // 32 datagrams at once, then 1/s; 6 reply bytes a request
  UringOptions u = uopts();
  u.udp_any_port = true;
  Running r(o, u);
  ASSERT_TRUE(r.ok) << r.error;
  int fd = connect_udp(r.driver.udp_port_bound());
  ASSERT_GE(fd, 0);
  char buf[2048];
  ASSERT_EQ(send(fd, "ping", 4, 0), 4);  // fits the bound: answered
  EXPECT_EQ(recv(fd, buf, sizeof buf, 0), 4);
  ASSERT_EQ(send(fd, "two x", 5, 0), 5);  // two datagrams of 5: the second passes 6
  EXPECT_EQ(recv(fd, buf, sizeof buf, 0), 5);
  auto drops = [&](UdpDrop d) { return r.driver.stats().udp_drops.n[static_cast<size_t>(d)]; };
  EXPECT_TRUE(wait_for([&] { return drops(UdpDrop::reply_cut) == 1u; }));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(send(fd, "xx", 2, 0), 2);
  EXPECT_TRUE(wait_for([&] { return r.driver.stats().datagrams_in == 102u; }));
  // At most the burst of 32 (two spent above) and one token per second since passed.
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(drops(UdpDrop::rate_limited) + 32 + uint64_t(secs) + 1, 102u);
  EXPECT_GT(drops(UdpDrop::rate_limited), 0u);
  close(fd);
}

TEST_P(UringDriverTest, StopClosesEveryConnectionAndReturns) {
  Running r(base_options(), uopts());
  ASSERT_TRUE(r.ok) << r.error;
  std::vector<int> fds;
  for (int i = 0; i < 5; ++i) {
    fds.push_back(connect_tcp(r.driver.tcp_port_bound()));
    ASSERT_TRUE(send_all(fds.back(), "hi\n"));
    ASSERT_EQ(read_n(fds.back(), 3), "hi\n");
  }
  // One of them mid-request and one blocked on a reply the client never reads.
  ASSERT_TRUE(send_all(fds[0], "unfinished"));
  ASSERT_TRUE(send_all(fds[1], "big 20000000 w\n"));
  std::this_thread::sleep_for(50ms);
  auto t0 = std::chrono::steady_clock::now();
  r.finish();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(r.handler.opens.load(), 5);
  EXPECT_EQ(r.handler.closes.load(), 5);
  for (size_t i = 2; i < fds.size(); ++i) EXPECT_EQ(read_to_eof(fds[i]), "");
  for (int fd : fds) close(fd);
  // The listening port is released.
  EXPECT_LT(connect_tcp(r.driver.tcp_port_bound()), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, UringDriverTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "single_shot" : "multishot"; });

TEST(UringDriver, StopBeforeRunReturnsAtOnce) {
  UringOptions u;
  u.tcp_any_port = true;
  UringDriver d(base_options(), u);
  std::string err;
  ASSERT_TRUE(d.open(&err)) << err;
  LineHandler h(1 << 20);
  d.stop();
  d.run(h);  // returns
  EXPECT_EQ(h.opens.load(), 0);
}

TEST(UringDriver, PortInUseIsAnErrorNamingTheAddress) {
  UringOptions u;
  u.tcp_any_port = true;
  Running first(base_options(), u);
  ASSERT_TRUE(first.ok) << first.error;
  DriverOptions o = base_options();
  o.tcp_port = first.driver.tcp_port_bound();
  UringDriver second(o);
  std::string err;
  EXPECT_FALSE(second.open(&err));
  EXPECT_NE(err.find("127.0.0.1:" + std::to_string(o.tcp_port)), std::string::npos) << err;
  EXPECT_NE(err.find("in use"), std::string::npos) << err;
}

TEST(UringDriver, BadListenAddressIsAnError) {
  DriverOptions o = base_options();
  o.tcp_port = 11299;
  o.listen = "127.0.0.1,[::1";
  UringDriver d(o);
  std::string err;
  EXPECT_FALSE(d.open(&err));
  EXPECT_NE(err.find("-l"), std::string::npos) << err;
  o.listen = "127.0.0.1:99999";
  UringDriver d2(o);
  EXPECT_FALSE(d2.open(&err));
  EXPECT_NE(err.find("99999"), std::string::npos) << err;
  o.tcp_port = 0;  // and no UDP: nothing to serve
  o.listen = "127.0.0.1";
  UringDriver d3(o);
  EXPECT_FALSE(d3.open(&err));
}

TEST(UringDriver, SeveralListenAddressesShareThePort) {
  DriverOptions o = base_options();
  o.tcp_port = free_port(SOCK_STREAM);
  o.udp_port = free_port(SOCK_DGRAM);
  o.listen = "127.0.0.1, 127.0.0.2";
  Running r(o, {});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.driver.tcp_port_bound(), o.tcp_port);
  EXPECT_EQ(r.driver.udp_port_bound(), o.udp_port);
  for (const char* addr : {"127.0.0.1", "127.0.0.2"}) {
    int fd = connect_tcp(o.tcp_port, addr);
    ASSERT_GE(fd, 0) << addr;
    ASSERT_TRUE(send_all(fd, "addr\n"));
    EXPECT_EQ(read_n(fd, 5), "addr\n");
    close(fd);
  }
}

}  // namespace
}  // namespace cachet::drivers
