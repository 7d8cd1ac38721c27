// The send stage: one I/O thread (epoll) holds one connection per server, writes each batch of
// deletes as one pipelined packet (by size, or when the oldest has waited batch.delay_us), at
// most batch.window packets in flight, and reads the answers. A server that fails (refused or
// lost connection, no answer within batch.timeout_ms, an answer that is not DELETED or
// NOT_FOUND) is down: its unanswered and queued deletes go to its spool, it is retried with a
// growing delay, and when it answers again its spool is replayed in order before new deletes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "control/invalidate/config.hh"
#include "control/invalidate/destination.hh"
#include "control/invalidate/spool_writer.hh"
#include "control/invalidate/tracker.hh"
#include "control/process.hh"

namespace cachet::invalidate {

class Auditor;

class Sender {
 public:
  Sender(const Config& config, std::vector<Pool>* pools, Tracker* tracker, SpoolWriter* writer,
         Auditor* auditor, Stats* stats);
  ~Sender();
  bool start(std::string* error);
  void stop();
  // Wakes the I/O thread (a queue became non-empty or reached batch.max_keys).
  void wake();

  // For the status socket: each server's connection state and last error.
  struct ServerState {
    std::string state, last_error;
  };
  ServerState state_of(const Server* s) const;

 private:
  struct Conn;
  void run();
  void step(Conn& c, int64_t now);
  void start_connect(Conn& c, int64_t now);
  void on_event(Conn& c, uint32_t events, int64_t now);
  void read_replies(Conn& c, int64_t now);
  bool on_line(Conn& c, std::string_view line, int64_t now);
  void send_batch(Conn& c, Batch batch, int64_t now);
  void write_out(Conn& c);
  void fail(Conn& c, const std::string& reason, int64_t now, bool retry_now = false);
  void watch(Conn& c, bool want_write);
  int64_t next_wakeup(const Conn& c, int64_t now) const;

  const Config& config_;
  std::vector<Pool>* pools_;
  Tracker* tracker_;
  SpoolWriter* writer_;
  Auditor* auditor_;
  Stats* stats_;
  std::vector<std::unique_ptr<Conn>> conns_;
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cachet::invalidate
