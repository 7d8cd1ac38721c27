// When to sweep which class for dead items (expired, flushed), so that a class is swept at a
// rate that follows how much of it is reclaimable. Like memcached's crawler, it schedules from
// per-class histograms of remaining TTL gathered by the last sweep; unlike it, it also counts
// the items written with a TTL since then (store::ClassSample::ttl_sets), so a class filling
// with short-lived items is not left alone until the next histogram. A flush_all makes every
// class that holds items due at the moment the flush takes effect.
#pragma once

#include <cstdint>
#include <vector>

#include "store/upkeep.hh"

namespace cachet::dataplane::maintenance {

class SweepPlan {
 public:
  // A class is due when its expected dead items reach this share of its used chunks (1%, as
  // memcached's crawler) and at least kMinDead of them, no sooner than kMinGapMs after its last
  // sweep; at the latest kMaxGapMs after it while it holds items with a TTL.
  static constexpr double kDeadShare = 0.01;
  static constexpr uint64_t kMinDead = 32;
  static constexpr uint64_t kMinGapMs = 1000;
  static constexpr uint64_t kMaxGapMs = 3600 * 1000;
  // What an item written with a TTL is assumed to live when no sweep has seen one yet.
  static constexpr double kDefaultTtlS = 300;

  // The flush marks now (store's oldest_live, oldest_cas): a change schedules a sweep of every
  // class for when the flush takes effect.
  void note_flush(uint32_t oldest_live, uint64_t oldest_cas);

  // The class to sweep now (0: none), the most reclaimable first.
  unsigned due(const std::vector<store::ClassSample>& classes, uint32_t now_s, uint64_t now_ms);
  // Expected dead items of a class now.
  double expected_dead(const store::ClassSample& c, uint64_t now_ms) const;

  // Flushes that took effect so far; a sweep notes it when it starts.
  uint64_t flushes() const { return flushes_; }
  // A sweep of class `cls` that started at start_ms, after `flushes` flushes, found `t`.
  void swept(unsigned cls, const store::SweepTally& t, uint64_t ttl_sets, uint64_t start_ms,
             uint64_t flushes);

 private:
  struct ClassPlan {
    bool known = false;       // swept at least once
    bool flushed = false;     // a flush took effect since its last sweep
    uint64_t last_ms = 0;
    uint64_t ttl_sets = 0;    // the class's ttl_sets when the last sweep started
    store::SweepTally seen;   // what the last sweep found alive
  };
  ClassPlan& plan(unsigned cls);

  std::vector<ClassPlan> plans_;  // by class id
  uint32_t flush_live_ = 0;
  uint64_t flush_cas_ = 0;
  bool flush_pending_ = false;
  uint32_t flush_at_ = 0;
  uint64_t flushes_ = 0;
};

}  // namespace cachet::dataplane::maintenance
