// The slab rebalancer's policy: which page moves where, from what the classes looked like over
// the last period. Pure functions of their inputs, so the choice is unit tested on constructed
// class states.
//
// Mode 1 is "Scaling Memcache at Facebook" 6.2 (age balancing): a class needs memory when it
// evicted in the period and its next victim was used at least `threshold` percent more recently
// than the average next victim of the other classes; the class whose next victim is the oldest
// gives it a page (the page its CLOCK hand reaches next, where its least recently used items are).
// Mode 2 is memcached's aggressive mode: any class that evicted gets a page from the oldest.
// Mode 0 moves nothing (only `slabs reassign` does).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "store/upkeep.hh"

namespace cachet::dataplane::maintenance {

// One class over one period.
struct ClassView {
  unsigned id = 0;
  uint32_t pages = 0;
  uint64_t items = 0;      // linked items (0: the class holds pages but nothing in them)
  uint64_t evictions = 0;  // evictions and out-of-memory refusals in the period
  uint32_t age = 0;        // idle seconds of its next victim (meaningful when items > 0)
};

struct Move {
  unsigned from = 0, to = 0;
  explicit operator bool() const { return to != 0 && from != 0; }
  bool operator==(const Move&) const = default;
};

// The move the period asks for, or none. threshold_pct: mode 1's margin (20 = the paper's).
Move choose_move(std::span<const ClassView> classes, int64_t mode, int64_t threshold_pct);

// A class that may give a page: it keeps at least one page while it holds items (memcached's
// NOSPARE rule), and one that holds nothing gives its last page too.
inline bool can_give(const ClassView& c) { return c.pages >= 2 || (c.pages >= 1 && c.items == 0); }

// Turns the store's cumulative class samples into periods: evictions since the last call.
class Periods {
 public:
  std::vector<ClassView> next(const std::vector<store::ClassSample>& samples);

 private:
  std::vector<uint64_t> last_;  // evictions + out-of-memory so far, by class id
};

}  // namespace cachet::dataplane::maintenance
