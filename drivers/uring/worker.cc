// The worker's loop: one io_uring_enter per iteration (submit + wait), dispatch of completions,
// servicing of the connections they touched, and the orderly shutdown after stop().
#include "drivers/uring/worker.hh"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/clock.hh"
#include "common/log.hh"
#include "drivers/uring/conn.hh"

namespace cachet::drivers::uring {

namespace {
constexpr uint16_t kTcpGroup = 0;
constexpr uint16_t kUdpGroup = 1;
constexpr unsigned kUdpBuffers = 16;
constexpr unsigned kUdpSingleShot = 4;            // outstanding recvmsg per socket without multishot
constexpr uint64_t kShutdownWaitNs = 2'000'000'000;
constexpr uint64_t kHandoffWaitNs = 2'000'000'000;
}  // namespace

Worker::Worker(unsigned id, int cpu, Shared& shared)
    : id_(id),
      hid_(shared.opts.worker_base + id),
      cpu_(cpu),
      shared_(shared),
      out_limit_(shared.opts.out_limit ? shared.opts.out_limit : 1),
      in_limit_(shared.opts.in_limit ? shared.opts.in_limit : 1),
      udp_guard_(shared.opts.udp_policy, 1'000'000'000) {}  // clock: common::mono_ns()

Worker::~Worker() {
  for (auto& l : listeners_)
    if (l->fd >= 0) close(l->fd);
  for (auto& u : udp_)
    if (u->fd >= 0) close(u->fd);
  for (auto& c : conns_)
    if (c->live) close(c->fd);
  if (ring_ready_) io_uring_queue_exit(&ring_);  // never ran; before the buffer rings unmap
}

bool Worker::init(TaskRun want, bool udp, std::string* error) {
  if (create_ring(&ring_, shared_.ring_entries, want, &taskrun_, error) != 0) return false;
  ring_ready_ = true;
  if (!shared_.multishot) return true;
  int r = tcp_bufs_.init(&ring_, kTcpGroup, shared_.tcp_buffers, shared_.tcp_buffer_size);
  if (r == 0 && udp) r = udp_bufs_.init(&ring_, kUdpGroup, kUdpBuffers, kUdpBufferSize);
  if (r != 0) {
    *error = fmt::format("worker {}: registering receive buffers failed: {}", id_, std::strerror(-r));
    return false;
  }
  return true;
}

void Worker::add_listener(int fd, bool admin) {
  auto l = std::make_unique<Listener>();
  l->fd = fd;
  l->admin = admin;
  listeners_.push_back(std::move(l));
}

void Worker::add_udp(int fd) {
  auto s = std::make_unique<UdpSocket>();
  s->fd = fd;
  unsigned n = shared_.multishot ? 1 : kUdpSingleShot;
  for (unsigned i = 0; i < n; ++i) {
    auto r = std::make_unique<UdpRecv>();
    r->sock = s.get();
    if (!shared_.multishot) r->buf = std::make_unique<char[]>(kUdpBufferSize);
    udp_recvs_.push_back(std::move(r));
  }
  udp_.push_back(std::move(s));
}

bool Worker::run(Handler& handler) {
  handler_ = &handler;
  if (int r = enable_ring(&ring_, taskrun_); r != 0) {
    common::log::error("io_uring worker {}: enabling the ring failed: {}", id_, std::strerror(-r));
    return false;
  }
  if (cpu_ >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu_, &set);
    if (int r = pthread_setaffinity_np(pthread_self(), sizeof set, &set); r != 0)
      common::log::warn("io_uring worker {}: pinning to cpu {} failed: {}", id_, cpu_,
                        std::strerror(r));
  }
  handler.worker_start(hid_);
  arm_wake();
  for (auto& l : listeners_) arm_accept(l.get());
  for (auto& r : udp_recvs_) arm_udp(r.get());
  for (auto& [fd, pending] : adopted_) {
    shared_.conns.fetch_add(1, std::memory_order_relaxed);
    Conn* c = alloc_conn();
    c->fd = fd;
    c->live = true;
    Counters::add(counters_.accepted, 1);
    c->state = handler_->stream_open(hid_, false);  // admin connections are not handed off
    if (!pending.empty()) ingest(c, pending);
    arm_recv(c);
    mark_dirty(c);
  }
  adopted_.clear();
  service_dirty();

  bool ok = true;
  while (!stopping_ && !shared_.stop.load(std::memory_order_relaxed) &&
         !(handing_off_ && handoff_done())) {
    int r;
    if (handing_off_) {
      // Bounded: stop() is seen within 50 ms, and a connection that never reaches a request
      // boundary (a client stalled inside a data block) is closed after kHandoffWaitNs.
      __kernel_timespec ts{0, 50'000'000};
      io_uring_cqe* cqe = nullptr;
      r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      if (common::mono_ns() > handoff_deadline_ns_) {
        for (auto& c : conns_)
          if (c->live && !c->dead) {
            c->dead = true;
            mark_dirty(c.get());
          }
      }
    } else {
      r = io_uring_submit_and_wait(&ring_, 1);
    }
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME) {
      common::log::error("io_uring worker {}: io_uring_enter failed: {}", id_, std::strerror(-r));
      ok = false;
      break;
    }
    drain_completions();
    service_dirty();
  }
  if (handing_off_ && handoff_done() && !shared_.stop.load(std::memory_order_relaxed)) {
    // Handed off: the sockets stay open for export_handoff(); nothing is in flight.
    common::log::debug("worker {} t={:.3f} ms: handed off", id_, common::mono_ns() / 1e6);
    handed_off_ = true;
  } else {
    shutdown();
  }
  io_uring_queue_exit(&ring_);  // from this thread: the ring's exit work signals its users
  ring_ready_ = false;
  common::log::debug("worker {} t={:.3f} ms: ring closed", id_, common::mono_ns() / 1e6);
  return ok;
}

io_uring_sqe* Worker::get_sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (!s) {  // the SQ is full: hand it to the kernel now (rare)
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

void Worker::cancel(uint64_t user_data) {
  io_uring_sqe* s = get_sqe();
  io_uring_prep_cancel64(s, user_data, 0);
  io_uring_sqe_set_data64(s, kIgnore);
}

void Worker::arm_wake() {
  io_uring_sqe* s = get_sqe();
  io_uring_prep_poll_add(s, shared_.wake_fd, POLLIN);
  io_uring_sqe_set_data64(s, kWake);
  wake_armed_ = true;
  ++inflight_;
}

void Worker::drain_completions() {
  io_uring_cqe* cqe;
  while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
    uint64_t ud = cqe->user_data;
    int res = cqe->res;
    unsigned flags = cqe->flags;
    io_uring_cqe_seen(&ring_, cqe);
    if (ud != LIBURING_UDATA_TIMEOUT) handle(ud, res, flags);
  }
}

void Worker::handle(uint64_t ud, int res, unsigned flags) {
  void* p = reinterpret_cast<void*>(ud & ~uint64_t{7});
  switch (static_cast<Op>(ud & 7)) {
    case kIgnore: break;
    case kWake:
      wake_armed_ = false;
      --inflight_;
      if (res == -ECANCELED) break;
      if (shared_.handoff.load(std::memory_order_relaxed) &&
          !shared_.stop.load(std::memory_order_relaxed)) {
        if (!handing_off_) begin_handoff();  // the loop now waits in 50 ms steps
      } else {
        stopping_ = true;
      }
      break;
    case kAccept: on_accept(static_cast<Listener*>(p), res, flags); break;
    case kAcceptRetry: on_accept_retry(static_cast<Listener*>(p)); break;
    case kRecv: on_recv(static_cast<Conn*>(p), res, flags); break;
    case kSend: on_send(static_cast<Conn*>(p), res); break;
    case kUdpRecv: on_udp_recv(static_cast<UdpRecv*>(p), res, flags); break;
    case kUdpSend: on_udp_send(static_cast<UdpSend*>(p), res); break;
  }
}

void Worker::begin_handoff() {
  common::log::debug("worker {} t={:.3f} ms: handoff begins", id_, common::mono_ns() / 1e6);
  handing_off_ = true;
  handoff_deadline_ns_ = common::mono_ns() + kHandoffWaitNs;
  for (auto& l : listeners_) {
    if (l->armed) cancel(tag(l.get(), kAccept));
    if (l->retry_armed) cancel(tag(l.get(), kAcceptRetry));
  }
  for (auto& r : udp_recvs_)
    if (r->armed) cancel(tag(r.get(), kUdpRecv));
  for (auto& c : conns_)
    if (c->live) mark_dirty(c.get());
}

bool Worker::handoff_done() const {
  for (const auto& l : listeners_)
    if (l->armed || l->retry_armed) return false;
  for (const auto& r : udp_recvs_)
    if (r->armed) return false;
  for (const auto& c : conns_)
    if (c->live) return false;
  size_t idle_sends = 0;  // every reply datagram sent
  for (const UdpSend* s = free_sends_; s; s = s->next) ++idle_sends;
  return idle_sends == udp_sends_.size();
}

void Worker::export_handoff(std::vector<int>* tcp, std::vector<int>* udp,
                            std::vector<std::pair<int, std::string>>* streams) {
  for (auto& l : listeners_) {
    if (l->fd < 0) continue;
    if (l->admin) close(l->fd); else tcp->push_back(l->fd);
    l->fd = -1;
  }
  for (auto& u : udp_) udp->push_back(std::exchange(u->fd, -1));
  for (auto& d : detached_) streams->push_back(std::move(d));
  detached_.clear();
}

// Cancels everything in flight, waits (bounded) for the completions, then closes every
// connection with stream_close.
void Worker::shutdown() {
  stopping_ = true;
  if (wake_armed_) cancel(kWake);
  for (auto& l : listeners_) {
    if (l->armed) cancel(tag(l.get(), kAccept));
    if (l->retry_armed) cancel(tag(l.get(), kAcceptRetry));
  }
  for (auto& r : udp_recvs_)
    if (r->armed) cancel(tag(r.get(), kUdpRecv));
  for (auto& c : conns_) {
    if (!c->live) continue;
    c->dead = true;
    mark_dirty(c.get());
  }
  service_dirty();  // submits the cancels, releases idle connections

  uint64_t deadline = common::mono_ns() + kShutdownWaitNs;
  while (inflight_ > 0 && common::mono_ns() < deadline) {
    __kernel_timespec ts{0, 50'000'000};
    io_uring_cqe* cqe = nullptr;
    int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) break;
    drain_completions();
    service_dirty();
  }
  if (inflight_ > 0)
    common::log::warn("io_uring worker {}: {} requests still in flight at shutdown", id_, inflight_);
  for (auto& c : conns_) {
    if (!c->live) continue;
    c->recv_armed = c->send_inflight = false;  // given up on; the ring's exit cancels them
    release(c.get());
  }
  for (auto& l : listeners_) close(std::exchange(l->fd, -1));
  for (auto& u : udp_) close(std::exchange(u->fd, -1));
}

}  // namespace cachet::drivers::uring
