// Destinations: every pool's servers (or its router), each with the queue of deletes waiting
// for a packet, the positions that say which of them are settled (acknowledged by the server,
// or durable in its spool), its spool and its counters.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "control/invalidate/config.hh"
#include "control/invalidate/ketama.hh"
#include "control/invalidate/mapper.hh"
#include "control/invalidate/spool.hh"
#include "control/invalidate/stats.hh"

namespace cachet::invalidate {

// Deletes taken from a server's queue (or read from its spool) to go out in one packet.
struct Batch {
  std::vector<std::string> keys;
  uint64_t end_pos = 0;     // the server's queue position after the last key: settles [.., end_pos)
  bool replay = false;      // read from the spool (settled already)
  uint64_t spool_end = 0;   // replay: the spool offset after this record
  int64_t sent_us = 0;      // when written (monotonic)
};

class Server {
 public:
  Server(size_t pool, std::string pool_name, ServerSpec spec, int64_t holdoff_s);

  const size_t pool;
  const std::string pool_name;
  const ServerSpec spec;
  const int64_t holdoff_s;
  std::string label() const { return pool_name + "/" + spec.address(); }
  ServerStats stats;
  Spool spool;

  // Dispatch stage: queues a delete of key, merging it with a queued delete of the same key
  // that has not gone out yet. Returns the queue position after it (the unit's requirement).
  // *first is set when the queue was empty, *full when it holds max_keys or more.
  uint64_t enqueue(std::string_view key, size_t max_keys, bool* first, bool* full,
                   Counter* merged);
  // I/O thread: takes up to max keys from the front of the queue; false when it is empty.
  bool take(size_t max, Batch* out);
  size_t queued() const;
  // Monotonic microseconds when the oldest queued delete arrived (0 when none).
  int64_t oldest_us() const;

  // Everything queued before this position is settled. Advanced in order by the I/O thread
  // (acknowledged packets) and the spool writer (durable spool records).
  void settle(uint64_t end_pos);
  uint64_t settled() const { return settled_.load(std::memory_order_acquire); }

  // Spool records handed to the spool writer and not yet written.
  std::atomic<uint64_t> spool_queued{0};
  // The server refused `delete <key> <seconds>` once: plain deletes from now on.
  std::atomic<bool> holdoff_refused{false};
  // Set by the I/O thread: connected and answering.
  std::atomic<bool> up{false};

 private:
  mutable std::mutex mu_;
  std::deque<std::string> queue_;
  std::unordered_set<std::string_view> waiting_;  // views into queue_
  uint64_t head_pos_ = 0, enq_pos_ = 0;
  int64_t oldest_us_ = 0;
  std::atomic<uint64_t> settled_{0};
};

struct Pool {
  std::string name;
  bool router = false;
  std::vector<std::unique_ptr<Server>> servers;
};

// Builds the pools of the config, their servers and routes; opens every server's spool under
// spool_dir (a spool left by an earlier run is replayed first). False with *error.
bool make_pools(const Config& config, std::vector<Pool>* pools, std::vector<PoolRoute>* routes,
                std::string* error);

// The spool file name of a server: <dir>/<pool>-<host>-<port>.spool.
std::string spool_path(const std::string& dir, const std::string& pool, const ServerSpec& s);

}  // namespace cachet::invalidate
