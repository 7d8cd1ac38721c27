// A statistics counter written by one thread and read (or reset) by any: a relaxed load and
// store, no locked instruction on the writer's path. Sum per-thread counters on read.
#pragma once

#include <atomic>
#include <cstdint>

namespace cachet::common {

// The writer's increment on a plain atomic (for counters kept in arrays or shared structs).
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

class Counter {
 public:
  void add(uint64_t n = 1) { bump(v_, n); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }
  void reset() { v_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

}  // namespace cachet::common
