// One io_uring worker: its ring, its SO_REUSEPORT sockets and its connections, all served by
// one thread. Nothing here is shared with other workers except `Shared` and the counters.
#pragma once

#include <liburing.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_buf.hh"
#include "common/counter.hh"
#include "drivers/driver.hh"
#include "drivers/uring/setup.hh"

namespace cachet::drivers::uring {

// Per-worker counters, written only by the worker's thread (plain load + store, no lock
// prefix), read by stats() from any thread.
struct alignas(64) Counters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> closed{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> bytes_written{0};
  std::atomic<uint64_t> datagrams_in{0};
  std::atomic<uint64_t> datagrams_out{0};

  static void add(std::atomic<uint64_t>& c, uint64_t n) { common::bump(c, n); }
};
static_assert(alignof(Counters) == 64 && sizeof(Counters) == 64);

// Fixed at open(), read by every worker.
struct Shared {
  DriverOptions opts;
  bool multishot = false;
  TaskRun taskrun = TaskRun::plain;
  unsigned ring_entries = 1024;
  unsigned tcp_buffers = 512;
  unsigned tcp_buffer_size = 8192;
  int wake_fd = -1;                    // eventfd written by stop(); every ring polls it
  std::atomic<bool> stop{false};       // set by stop()
  std::atomic<bool> handoff{false};    // set by begin_handoff()
  alignas(64) std::atomic<unsigned> conns{0};  // open stream connections, all workers (-c)
};

struct Conn;
struct Listener;
struct UdpSocket;
struct UdpRecv;
struct UdpSend;

class Worker {
 public:
  Worker(unsigned id, int cpu, Shared& shared);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Creates the ring (want = flavour to try first) and, with multishot, the buffer rings.
  // Called from open(), before run(). Returns false with *error set.
  bool init(TaskRun want, bool udp, std::string* error);
  TaskRun taskrun() const { return taskrun_; }
  // Takes ownership of sockets; called from open(). An admin listener is never handed off.
  void add_listener(int fd, bool admin = false);
  void add_udp(int fd);
  // A connection adopted from a predecessor, served from run() on, `pending` parsed first.
  void adopt_stream(int fd, std::string pending);
  // After run() returned from a handoff: the sockets and detached connections, now owned by
  // the caller.
  void export_handoff(std::vector<int>* tcp, std::vector<int>* udp,
                      std::vector<std::pair<int, std::string>>* streams);

  // The worker thread: serves until Shared::stop, then closes every connection. Returns false
  // when the ring failed (logged).
  bool run(Handler& handler);
  bool handed_off() const { return handed_off_; }
  const Counters& counters() const { return counters_; }
  const UdpGuard& udp_guard() const { return udp_guard_; }

  // Sends one reply datagram from `sock` to `to` (used by the datagram sink).
  void udp_send(UdpSocket* sock, const sockaddr* to, socklen_t to_len, std::string_view head,
                std::string_view body);

 private:
  // user_data = object address | Op (objects are at least 8-byte aligned).
  enum Op : uint64_t {
    kIgnore = 0, kWake = 1, kAccept = 2, kAcceptRetry = 3,
    kRecv = 4, kSend = 5, kUdpRecv = 6, kUdpSend = 7,
  };
  static uint64_t tag(const void* p, Op op) { return reinterpret_cast<uintptr_t>(p) | op; }

  io_uring_sqe* get_sqe();
  void cancel(uint64_t user_data);
  void drain_completions();
  void handle(uint64_t user_data, int res, unsigned flags);
  void shutdown();
  void arm_wake();
  // Handoff: stop accepting and receiving, then detach connections at request boundaries.
  void begin_handoff();
  bool handoff_done() const;
  void detach(Conn* c);

  // TCP (worker_tcp.cc)
  void arm_accept(Listener* l);
  void on_accept(Listener* l, int res, unsigned flags);
  void on_accept_retry(Listener* l);
  void accepted(int fd, bool admin);
  void reject(int fd);
  Conn* alloc_conn();
  void arm_recv(Conn* c);
  void on_recv(Conn* c, int res, unsigned flags);
  void on_send(Conn* c, int res);
  void ingest(Conn* c, std::string_view data);
  size_t feed(Conn* c, std::string_view in);
  bool can_feed(const Conn* c) const;
  bool out_blocked(const Conn* c) const;
  void mark_dirty(Conn* c);
  void service_dirty();
  void service(Conn* c);
  void start_send(Conn* c);
  void release(Conn* c);

  // UDP (worker_udp.cc)
  void arm_udp(UdpRecv* r);
  void on_udp_recv(UdpRecv* r, int res, unsigned flags);
  void on_udp_send(UdpSend* s, int res);
  void deliver(UdpSocket* sock, std::string_view payload, const sockaddr* from, socklen_t len);

  const unsigned id_;
  const unsigned hid_;  // the Handler's id for this worker (DriverOptions::worker_base + id_)
  const int cpu_;
  Shared& shared_;
  const size_t out_limit_;
  const size_t in_limit_;
  io_uring ring_{};
  bool ring_ready_ = false;
  TaskRun taskrun_ = TaskRun::plain;
  BufRing tcp_bufs_;
  BufRing udp_bufs_;
  Handler* handler_ = nullptr;
  bool stopping_ = false;
  bool handing_off_ = false;
  bool handed_off_ = false;  // run() ended in a completed handoff
  uint64_t handoff_deadline_ns_ = 0;
  bool wake_armed_ = false;
  uint64_t inflight_ = 0;  // submitted requests whose last completion has not arrived

  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::unique_ptr<UdpSocket>> udp_;
  std::vector<std::unique_ptr<UdpRecv>> udp_recvs_;
  std::vector<std::unique_ptr<UdpSend>> udp_sends_;
  UdpSend* free_sends_ = nullptr;
  std::vector<std::unique_ptr<Conn>> conns_;  // every Conn ever made; reused via free_conns_
  Conn* free_conns_ = nullptr;
  Conn* dirty_ = nullptr;  // connections to service at the end of this loop iteration
  std::vector<std::pair<int, std::string>> adopted_;   // to serve when run() starts
  std::vector<std::pair<int, std::string>> detached_;  // handed off: fd and pending input

  Counters counters_;
  UdpGuard udp_guard_;  // the UDP policy (rate per source, reply bound) and its drop counts
};

}  // namespace cachet::drivers::uring
