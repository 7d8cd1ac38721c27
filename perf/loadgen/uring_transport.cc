// Kernel-socket transport on io_uring: one recv always armed per connection, at most one send
// batch in flight per connection, and one io_uring_enter per poll() for all of them.
#include <liburing.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/core.h>

#include "common/byte_buf.hh"
#include "perf/loadgen/transport.hh"

namespace cachet::perf {
namespace {

constexpr size_t kRecvBuf = 64 << 10;
enum Op : uint64_t { kRecv = 1, kSend = 2 };

class UringTransport final : public Transport {
 public:
  ~UringTransport() override { close_all(); }

  bool open(const std::string& host, uint16_t port, unsigned n, Framing framing,
            std::string* error) override {
    framing_ = framing;
    unsigned entries = 64;
    while (entries < 2 * n + 64 && entries < 4096) entries *= 2;
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init_params(entries, &ring_, &p);
    if (rc < 0) {  // older kernels: plain ring
      p = io_uring_params{};
      rc = io_uring_queue_init_params(entries, &ring_, &p);
    }
    if (rc < 0) {
      *error = fmt::format("io_uring_queue_init: {} (try --io epoll)", std::strerror(-rc));
      return false;
    }
    ring_ok_ = true;
    conns_.resize(n);
    for (unsigned i = 0; i < n; ++i) {
      int fd = connect_socket(host, port, framing, false, error);
      if (fd < 0) return false;
      conns_[i].fd = fd;
      conns_[i].rbuf = std::make_unique<char[]>(kRecvBuf);
      arm_recv(i);
    }
    return true;
  }

  void send(uint32_t i, std::string_view bytes) override {
    Conn& c = conns_[i];
    if (c.fd < 0) return;
    if (framing_ == Framing::datagram) {
      uint32_t len = static_cast<uint32_t>(bytes.size());
      c.pending.append(&len, sizeof len);
    }
    c.pending.append(bytes);
    if (!c.dirty) {
      c.dirty = true;
      dirty_.push_back(i);
    }
  }

  int poll(uint64_t timeout_us, TransportHandler& h) override {
    for (uint32_t i : dirty_) {
      conns_[i].dirty = false;
      if (conns_[i].fd >= 0 && conns_[i].sends_out == 0) start_send(i);
    }
    dirty_.clear();
    io_uring_cqe* cqe = nullptr;
    if (timeout_us == 0) {
      io_uring_submit_and_get_events(&ring_);  // also runs deferred task work
    } else {
      __kernel_timespec ts{static_cast<long long>(timeout_us / 1000000),
                           static_cast<long long>(timeout_us % 1000000) * 1000};
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    int seen = 0;
    unsigned head;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      complete(cqe->user_data, cqe->res, h);
    }
    io_uring_cq_advance(&ring_, static_cast<unsigned>(seen));
    return seen;
  }

  void close_all() override {
    if (ring_ok_) io_uring_queue_exit(&ring_);  // cancels what is in flight before buffers go
    ring_ok_ = false;
    for (Conn& c : conns_)
      if (c.fd >= 0) {
        ::close(c.fd);
        c.fd = -1;
      }
  }

 private:
  struct Conn {
    int fd = -1;
    std::unique_ptr<char[]> rbuf;
    common::ByteBuf pending;   // queued by send(); datagrams carry a 4-byte length prefix
    common::ByteBuf inflight;  // owned by the kernel while sends_out > 0
    unsigned sends_out = 0;
    bool dirty = false;
  };

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (!s) {
      io_uring_submit(&ring_);
      s = io_uring_get_sqe(&ring_);
    }
    return s;  // non-null: the ring was just emptied
  }

  void arm_recv(uint32_t i) {
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, conns_[i].fd, conns_[i].rbuf.get(), kRecvBuf, 0);
    io_uring_sqe_set_data64(s, (static_cast<uint64_t>(i) << 8) | kRecv);
  }

  void submit_send(uint32_t i, const char* p, size_t len) {
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, conns_[i].fd, p, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, (static_cast<uint64_t>(i) << 8) | kSend);
    ++conns_[i].sends_out;
  }

  // Moves pending to inflight and submits it: one send for a stream, one per datagram.
  void start_send(uint32_t i) {
    Conn& c = conns_[i];
    if (c.pending.empty()) return;
    std::swap(c.pending, c.inflight);
    if (framing_ == Framing::stream) return submit_send(i, c.inflight.data(), c.inflight.size());
    const char* p = c.inflight.data();
    const char* end = p + c.inflight.size();
    while (p < end) {
      uint32_t len;
      std::memcpy(&len, p, sizeof len);
      submit_send(i, p + sizeof len, len);
      p += sizeof len + len;
    }
  }

  void fail(uint32_t i, int err, TransportHandler& h) {
    if (conns_[i].fd < 0) return;
    ::close(conns_[i].fd);  // in-flight operations keep their own file reference
    conns_[i].fd = -1;
    h.on_closed(i, err);
  }

  void complete(uint64_t data, int res, TransportHandler& h) {
    uint32_t i = static_cast<uint32_t>(data >> 8);
    Conn& c = conns_[i];
    if ((data & 0xff) == kRecv) {
      if (c.fd < 0) return;
      if (res > 0)
        h.on_recv(i, std::string_view(c.rbuf.get(), static_cast<size_t>(res)));
      else if (res == 0 && framing_ == Framing::stream)
        return fail(i, 0, h);
      else if (res < 0 && res != -EAGAIN && res != -EINTR && res != -ENOBUFS)
        return fail(i, -res, h);
      if (c.fd >= 0) arm_recv(i);
      return;
    }
    --c.sends_out;
    if (c.fd < 0) return;
    if (res < 0) return fail(i, -res, h);
    if (framing_ == Framing::stream) {
      c.inflight.consume(static_cast<size_t>(res));
      if (!c.inflight.empty()) return submit_send(i, c.inflight.data(), c.inflight.size());
    }
    if (c.sends_out == 0) {
      c.inflight.clear();
      start_send(i);
    }
  }

  Framing framing_ = Framing::stream;
  io_uring ring_{};
  bool ring_ok_ = false;
  std::vector<Conn> conns_;
  std::vector<uint32_t> dirty_;
};

}  // namespace

std::unique_ptr<Transport> make_uring_transport() {
  return std::make_unique<UringTransport>();
}

}  // namespace cachet::perf
