// Kernel-socket transport on epoll (level triggered, non-blocking sockets), and the socket
// set-up shared with the io_uring transport.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/core.h>

#include "common/byte_buf.hh"
#include "perf/loadgen/transport.hh"

namespace cachet::perf {

int connect_socket(const std::string& host, uint16_t port, Framing framing, bool nonblocking,
                   std::string* error) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    *error = fmt::format("--host '{}' is not an IPv4 address", host);
    return -1;
  }
  int fd =
      ::socket(AF_INET, (framing == Framing::stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = fmt::format("socket: {}", std::strerror(errno));
    return -1;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    *error = fmt::format("connect to {}:{}: {}", host, port, std::strerror(errno));
    ::close(fd);
    return -1;
  }
  int one = 1;
  if (framing == Framing::stream) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (framing == Framing::datagram) {
    int sz = 4 << 20;  // absorb reply bursts; the kernel caps this at rmem_max
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  }
  if (nonblocking) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

namespace {

class EpollTransport final : public Transport {
 public:
  ~EpollTransport() override {
    close_all();
    if (ep_ >= 0) ::close(ep_);
  }

  bool open(const std::string& host, uint16_t port, unsigned n, Framing framing,
            std::string* error) override {
    framing_ = framing;
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
      *error = fmt::format("epoll_create1: {}", std::strerror(errno));
      return false;
    }
    conns_.resize(n);
    for (unsigned i = 0; i < n; ++i) {
      int fd = connect_socket(host, port, framing, true, error);
      if (fd < 0) return false;
      conns_[i].fd = fd;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = i;
      ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
    }
    rbuf_.resize(256 << 10);
    events_.resize(std::min<size_t>(n, 1024));
    return true;
  }

  void send(uint32_t i, std::string_view bytes) override {
    Conn& c = conns_[i];
    if (c.fd < 0) return;
    if (framing_ == Framing::datagram) {
      uint32_t len = static_cast<uint32_t>(bytes.size());
      c.out.append(&len, sizeof len);
    }
    c.out.append(bytes);
    if (!c.dirty) {
      c.dirty = true;
      dirty_.push_back(i);
    }
  }

  int poll(uint64_t timeout_us, TransportHandler& h) override {
    flush(h);
    timespec ts{static_cast<time_t>(timeout_us / 1000000),
                static_cast<long>(timeout_us % 1000000) * 1000};
    int n = ::epoll_pwait2(ep_, events_.data(), static_cast<int>(events_.size()), &ts, nullptr);
    if (n < 0) return 0;  // EINTR
    for (int k = 0; k < n; ++k) {
      uint32_t i = events_[k].data.u32;
      if (conns_[i].fd < 0) continue;
      if (events_[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) read_in(i, h);
      if (conns_[i].fd >= 0 && (events_[k].events & EPOLLOUT)) write_out(i, h);
    }
    flush(h);
    return n;
  }

  void close_all() override {
    for (Conn& c : conns_)
      if (c.fd >= 0) {
        ::close(c.fd);
        c.fd = -1;
      }
  }

 private:
  struct Conn {
    int fd = -1;
    common::ByteBuf out;  // stream bytes, or datagrams each preceded by a 4-byte length
    bool dirty = false;
    bool want_out = false;
  };

  void flush(TransportHandler& h) {
    for (size_t k = 0; k < dirty_.size(); ++k) {  // write_out may not add to dirty_
      conns_[dirty_[k]].dirty = false;
      if (conns_[dirty_[k]].fd >= 0) write_out(dirty_[k], h);
    }
    dirty_.clear();
  }

  void fail(uint32_t i, int err, TransportHandler& h) {
    ::close(conns_[i].fd);
    conns_[i].fd = -1;
    conns_[i].out.clear();
    h.on_closed(i, err);
  }

  void read_in(uint32_t i, TransportHandler& h) {
    // Bounded: a few reads per event, the rest waits for the next poll (level triggered).
    for (int round = 0; round < 16 && conns_[i].fd >= 0; ++round) {
      ssize_t n = ::recv(conns_[i].fd, rbuf_.data(), rbuf_.size(), 0);
      if (n > 0) {
        h.on_recv(i, std::string_view(rbuf_.data(), static_cast<size_t>(n)));
        if (framing_ == Framing::stream && static_cast<size_t>(n) < rbuf_.size()) return;
        continue;
      }
      if (n == 0 && framing_ == Framing::stream) return fail(i, 0, h);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n < 0) return fail(i, errno, h);
    }
  }

  void write_out(uint32_t i, TransportHandler& h) {
    Conn& c = conns_[i];
    bool blocked = false;
    while (!c.out.empty()) {
      const char* p = c.out.data();
      size_t len = c.out.size(), hdr = 0;
      if (framing_ == Framing::datagram) {
        uint32_t dlen;
        std::memcpy(&dlen, p, sizeof dlen);
        hdr = sizeof dlen;
        len = dlen;
      }
      ssize_t n = ::send(c.fd, p + hdr, len, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        blocked = true;
        break;
      }
      if (n < 0) return fail(i, errno, h);
      c.out.consume(framing_ == Framing::datagram ? hdr + len : static_cast<size_t>(n));
    }
    if (blocked != c.want_out) {
      c.want_out = blocked;
      epoll_event ev{};
      ev.events = blocked ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
      ev.data.u32 = i;
      ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    }
  }

  Framing framing_ = Framing::stream;
  int ep_ = -1;
  std::vector<Conn> conns_;
  std::vector<uint32_t> dirty_;
  std::vector<char> rbuf_;
  std::vector<epoll_event> events_;
};

}  // namespace

std::unique_ptr<Transport> make_epoll_transport() {
  return std::make_unique<EpollTransport>();
}

}  // namespace cachet::perf
