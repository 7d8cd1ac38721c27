// The spool writer thread: batches for servers that are down (or still replaying their spool)
// are appended to the server's spool and made durable, and only then count as settled. When a
// spool is at its bound, its batches wait here, unsettled, so the pipeline stops confirming and
// then reading: memory stays bounded and nothing is confirmed that is not safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "control/invalidate/destination.hh"
#include "control/invalidate/tracker.hh"

namespace cachet::invalidate {

class SpoolWriter {
 public:
  SpoolWriter(uint64_t max_bytes, Tracker* tracker) : max_bytes_(max_bytes), tracker_(tracker) {}
  ~SpoolWriter() { stop(); }
  void start();
  void stop();
  // Queues a batch for s's spool (after every batch queued for s before it).
  void submit(Server* s, Batch batch);

 private:
  void run();
  // Writes what fits of one server's consecutive batches; returns how many were written.
  size_t write_some(Server* s, std::deque<Batch>& batches);

  const uint64_t max_bytes_;
  Tracker* tracker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Server*, Batch>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace cachet::invalidate
