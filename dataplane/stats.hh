// Per-worker request counters of the dataplane (memcached's thread stats), one table of names and
// meanings, summed on read. Each worker writes only its own cache line.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "common/counter.hh"

namespace cachet::dataplane {

// X(name, description), in the order memcached 1.6.18's `stats` prints them.
#define CACHET_DATAPLANE_STATS(X)                                                 \
  X(cmd_get, "keys requested by get/gets")                                        \
  X(cmd_set, "storage commands whose data block was read")                        \
  X(cmd_flush, "flush_all commands")                                              \
  X(cmd_touch, "keys touched by touch/gat/gats")                                  \
  X(get_hits, "get/gets keys found")                                              \
  X(get_misses, "get/gets keys not found")                                        \
  X(delete_misses, "delete of a missing key")                                     \
  X(delete_hits, "delete of a present key")                                       \
  X(incr_misses, "incr of a missing key")                                         \
  X(incr_hits, "incr of a numeric value")                                         \
  X(decr_misses, "decr of a missing key")                                         \
  X(decr_hits, "decr of a numeric value")                                         \
  X(cas_misses, "cas of a missing key")                                           \
  X(cas_hits, "cas that stored")                                                  \
  X(cas_badval, "cas refused: the item changed")                                  \
  X(touch_hits, "touch/gat keys found")                                           \
  X(touch_misses, "touch/gat keys not found")                                     \
  X(store_too_large, "storage commands refused: value larger than the item limit") \
  X(store_no_memory, "storage commands refused: no memory")

// Cachet's own counters (mcrouter's dialect and the paper's rules), printed after memcached's.
#define CACHET_DIALECT_STATS(X)                                                   \
  X(cmd_lease_get, "lease-get commands")                                          \
  X(cmd_lease_set, "lease-set commands")                                          \
  X(lease_tokens, "lease tokens issued (a lease-get miss that may refill)")       \
  X(lease_hot_misses, "lease-get misses told to wait (token 1): a refill is on")  \
  X(lease_stale_served, "lease-get answers that carried a stale value")            \
  X(lease_set_stale, "lease-sets answered STALE_STORED (token not live)")         \
  X(lease_set_refused, "lease-sets answered NOT_STORED")                          \
  X(delete_holdoffs, "deletes with a hold-off (delete <key> <seconds>)")          \
  X(holdoff_refused, "add and lease-set refused by a delete hold-off")            \
  X(delete_kept_nothing, "deletes that could keep neither stale value nor hold-off (no memory)")

using common::Counter;

// Every counter a worker keeps.
#define CACHET_WORKER_STATS(X) CACHET_DATAPLANE_STATS(X) CACHET_DIALECT_STATS(X)

// One worker's counters, on cache lines of their own.
struct alignas(64) WorkerStats {
#define CACHET_X(name, desc) Counter name;
  CACHET_WORKER_STATS(CACHET_X)
#undef CACHET_X
};
static_assert(alignof(WorkerStats) == 64);
static_assert(sizeof(WorkerStats) % 64 == 0);

// Plain sums of every worker's counters.
struct StatTotals {
#define CACHET_X(name, desc) uint64_t name = 0;
  CACHET_WORKER_STATS(CACHET_X)
#undef CACHET_X
};

// The counters of all workers. worker(i) is for worker i's thread; totals() and reset() may be
// called from any thread.
class StatsBoard {
 public:
  explicit StatsBoard(unsigned workers);
  unsigned workers() const { return n_; }
  WorkerStats& worker(unsigned i) { return slots_[i]; }

  // Sums since the last reset().
  StatTotals totals() const;
  // `stats reset`: later totals() count from now. Writers are never disturbed: the current sums
  // become a baseline that totals() subtracts.
  void reset();

 private:
  StatTotals raw() const;

  unsigned n_;
  std::unique_ptr<WorkerStats[]> slots_;
  mutable std::mutex mu_;
  StatTotals base_;
};

}  // namespace cachet::dataplane
