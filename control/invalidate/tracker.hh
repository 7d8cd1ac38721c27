// Settlement of units and the position confirmed to PostgreSQL. A unit is settled when every
// server it sent deletes to has settled its queue up to the unit's position there (deletes
// acknowledged, or durable in the server's spool); units leave in stream order, and the end
// LSN of the last transaction that left is the slot position the source may confirm. The
// number of units read and not yet settled is the pipeline's back-pressure budget.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

#include "control/invalidate/destination.hh"
#include "control/invalidate/stats.hh"

namespace cachet::invalidate {

class Tracker {
 public:
  Tracker(uint64_t max_inflight, Stats* stats) : max_(max_inflight), stats_(stats) {}

  // Reader: n more units were read (they count until they settle). Waits at most timeout_ms
  // while the budget is spent; false if it still is.
  bool wait_for_room(int timeout_ms);
  void reserve(uint64_t n);
  uint64_t inflight() const;

  // Dispatch stage, in seq order: the unit's deletes are queued; reqs lists each server it
  // touched with its queue position there.
  void add(uint64_t seq, uint64_t end_lsn, int64_t commit_time_us,
           std::vector<std::pair<Server*, uint64_t>> reqs);
  // Any thread, after a server's settled position moved: retires settled units in order.
  void advance();

  // The slot position all settled transactions reach; 0 until one settles.
  uint64_t confirmed_lsn() const;
  // Nothing read is unsettled: the source may confirm a keepalive's WAL end.
  void confirm_idle(uint64_t wal_end);
  // Commit time (Unix us) of the oldest unsettled transaction, 0 when none.
  int64_t oldest_commit_us() const;
  // Number of units in the tracker (dispatched, not retired).
  size_t tracked() const;
  // Forgets the budget of units that will never be dispatched (the stream was restarted after
  // the pipeline drained).
  void reset_budget();

  // Restart accounting: transactions whose end LSN is at most `lsn` were delivered before a
  // restart; their deletes are counted in stats.redelivered.
  void set_redelivery_bound(uint64_t lsn) { redeliver_below_ = lsn; }
  bool is_redelivery(uint64_t end_lsn) const { return end_lsn && end_lsn <= redeliver_below_; }

 private:
  struct Rec {
    uint64_t seq, end_lsn;
    int64_t commit_time_us;
    std::vector<std::pair<Server*, uint64_t>> reqs;
  };
  mutable std::mutex mu_;
  std::condition_variable room_;
  std::deque<Rec> units_;
  uint64_t inflight_ = 0;
  const uint64_t max_;
  uint64_t confirmed_ = 0;
  uint64_t redeliver_below_ = 0;
  Stats* stats_;
};

}  // namespace cachet::invalidate
