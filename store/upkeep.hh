// The store's background work, cut into steps that each hold one lock (a class lock for O(1)
// list work, or one bucket lock around one item) for a bounded time, so that no request ever
// waits for it: the page mover (relocate or evict a page's live items, give the page to another
// class), sweeps that free expired and flushed items, the transient wheel's reaper, the scan
// that repairs the pages after a crash, and index growth ahead of the writers. It knows no
// policy and no thread: the maintenance engine (dataplane/maintenance) decides what runs when.
//
// Thread rules: each call takes the Worker handle (Store::upkeep_worker) of the calling thread.
// A PageMove is driven by one thread at a time; sweep_page and repair_page may run on several
// threads at once for different pages; reap_transient by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "store/store.hh"

namespace cachet::store {

// Live items by remaining TTL: bin b counts TTLs in [2^b, 2^(b+1)) seconds (bin 0: below 2 s).
inline constexpr unsigned kTtlBins = 24;

// What the rebalancer reads of one class.
struct ClassSample {
  unsigned id;
  uint32_t pages;        // pages the class owns
  uint32_t chunks_per_page;
  uint64_t items;        // linked items (hidden ones included: they hold memory too)
  uint64_t used_chunks;
  uint64_t evicted;      // evictions so far (sum over every worker)
  uint64_t outofmemory;  // writes that found no chunk so far
  uint64_t ttl_sets;     // writes with an exptime the transient wheel did not take, so far
  uint32_t victim_age;   // idle seconds of the item the CLOCK hand would take next (0: none)
  bool draining;         // one of its pages is being moved out
};

// What a sweep of some pages found.
struct SweepTally {
  uint64_t checked = 0;    // linked items looked at
  uint64_t reclaimed = 0;  // dead ones freed
  uint64_t no_ttl = 0;     // live items without an exptime
  std::array<uint64_t, kTtlBins> ttl{};  // live items with one, by remaining TTL
  void add(const SweepTally& o);
  static unsigned bin(uint32_t remaining);
};

// One page being moved, step by step.
struct PageMove {
  uint32_t page = kNoPage;
  unsigned from = 0, to = 0;
  uint32_t cursor = 0;  // next chunk of this pass
  uint32_t busy = 0;    // chunks found in a writer's hands in this pass
  uint32_t passes = 0;  // passes that ended with chunks in flight
  uint64_t rescued = 0, evicted = 0, reclaimed = 0;
};

enum class MoveResult : uint8_t {
  working,  // more of the page to go through: call move_step again
  waiting,  // a pass ended with chunks in writers' hands: call again a little later
  done,     // the page belongs to `to` now
  failed,   // given back to `from` (never emptied, or gone from under us)
};

// What one reap of the transient wheel did.
struct ReapTally {
  uint32_t seconds = 0;   // seconds taken off the wheel
  uint64_t entries = 0;   // entries looked at
  uint64_t reaped = 0;    // expired items freed
};

class Upkeep {
 public:
  explicit Upkeep(Store& store) : s_(store) {}

  // Every class that owns a page, with the figures the rebalancer compares (without ages:
  // victim_age 0, and no look under the CLOCK hands).
  std::vector<ClassSample> sample_classes(uint32_t now, bool ages = true) const;

  // ---- page moves ----
  // Starts moving the page of class `from` that its CLOCK hand reaches next (the page of its
  // least recently used items; the hand's own page, when it is the only one) to class `to`. False when `from` has no page to give or `to` is not a
  // class. Allocation and eviction in `from` leave the page alone from now on.
  bool begin_move(unsigned from, unsigned to, PageMove* m);
  // Starts moving page p to class `to` (tests, and the choice of a particular page).
  bool begin_move_page(uint32_t p, unsigned to, PageMove* m);
  // Goes through up to max_chunks chunks of the page: each live item is copied into a free
  // chunk of its class and relinked under its bucket lock (no reader sees half of it), or
  // evicted when the class has no free chunk; dead items are freed. Finishes by giving the
  // empty page to `to`.
  MoveResult move_step(Worker& w, PageMove& m, uint32_t max_chunks, uint32_t now);
  // Gives the page back to its class (what was moved out stays moved).
  void cancel_move(PageMove& m);
  // Passes with chunks in flight after which move_step gives up on a page.
  static constexpr uint32_t kMaxBusyPasses = 200;

  // ---- sweeps ----
  // The pages class `cls` owns now (a snapshot).
  std::vector<uint32_t> pages_of(unsigned cls) const;
  // Frees the expired and flushed items of page p and counts the live ones by remaining TTL.
  // With rewheel, live transient items also go (back) into the transient wheel.
  void sweep_page(Worker& w, uint32_t p, uint32_t now, SweepTally& t, bool rewheel = false);

  // ---- the transient wheel ----
  // Takes the seconds that have wholly passed (up to now - 1) off the wheel, at most
  // max_seconds of them, and frees their items that are still linked and expired.
  ReapTally reap_transient(Worker& w, uint32_t now, uint32_t max_seconds);
  // Seconds that have passed and are not reaped yet.
  uint32_t transient_backlog(uint32_t now) const;

  // ---- repair after a crash ----
  bool repair_pending() const;
  // Rebuilds page p's free list, frees the chunks a dead process had taken but not linked, and
  // sweeps the page (rewheel). Returns the chunks freed.
  uint32_t repair_page(Worker& w, uint32_t p, uint32_t now, SweepTally& t);
  // Every page has been repaired.
  void repair_done();

  // ---- index ----
  // Splits up to max_splits buckets while the index holds more than 4 items per bucket (the
  // writers split inline only past 5), so that a growing cache rarely splits on a request.
  uint32_t grow_index(uint32_t max_splits);

  uint32_t pages_given() const { return s_.slabs_.pages_given(); }
  // flush_all's marks now (oldest_live, oldest_cas): a change means a flush is coming.
  std::pair<uint32_t, uint64_t> flush_marks() const {
    return {s_.hdr_->oldest_live.load(std::memory_order_relaxed),
            s_.hdr_->oldest_cas.load(std::memory_order_relaxed)};
  }

 private:
  // Unlinks the item at off if it is still linked there and dead at `now`, counts it and frees
  // it. True when it did.
  bool reap_if_dead(Worker& w, uint64_t off, uint32_t now, bool transient);
  // Moves one linked item of a draining page out of it (or frees it when dead).
  void relocate(Worker& w, Item* it, PageMove& m, uint32_t now);
  uint32_t victim_age(unsigned cls, uint32_t now) const;

  Store& s_;
};

}  // namespace cachet::store
