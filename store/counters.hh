// The store's private pieces shared by its .cc files: per-worker counters, the item checksum,
// key comparison and the attach-time table check. Nothing outside store/ includes this.
#pragma once

#include <array>
#include <atomic>
#include <cstring>
#include <string>
#include <string_view>

#include "common/counter.hh"
#include "common/hash.hh"
#include "store/layout.hh"

namespace cachet::store {

// The checksum kept in each item: key, value and ext (when present), seeded with the flags,
// the protocol marks and the hidden bit (so damage can neither resurrect a value kept hidden
// after a delete nor change what a protocol rule sees); checked when a crash or an attach
// leaves doubt. Padding before the ext is zero. Whatever changes a covered field reseals.
inline uint32_t item_checksum(const Item* it) {
  const char* end = it->has_ext() ? reinterpret_cast<const char*>(it) + it->total()
                                  : it->value() + it->nbytes;
  const bool hidden = (it->state.load(std::memory_order_relaxed) & Item::kHidden) != 0;
  const uint64_t seed = uint64_t{it->flags} | uint64_t{it->marks} << 32 | uint64_t{hidden} << 40;
  return static_cast<uint32_t>(
      XXH3_64bits_withSeed(it->key(), static_cast<size_t>(end - it->key()), seed));
}

inline bool key_matches(const Item* it, std::string_view key) {
  return it->nkey == key.size() && std::memcmp(it->key(), key.data(), key.size()) == 0;
}

class Arena;
struct Geometry;

// Whether an existing arena's tables can be trusted: header, class table, page chains and
// index header are consistent with the geometry (check.cc). O(pages + classes); false with
// the first problem in *why. Locks may be held (a crashed process leaves them).
bool check_tables(const Arena& arena, const Geometry& g, std::string* why);

using common::Counter;

// Per-class counters of one worker (memcached's per-slab-class names, and ttl_sets: items
// written with an exptime that the transient wheel did not take: the background sweeps
// schedule themselves from them).
#define CACHET_CLASS_COUNTERS(X) \
  X(get_hits) X(cmd_set) X(delete_hits) X(incr_hits) X(decr_hits) X(cas_hits) X(cas_badval) \
  X(touch_hits) X(evicted) X(evicted_nonzero) X(evicted_unfetched) X(expired_unfetched)      \
  X(reclaimed) X(outofmemory) X(ttl_sets)

struct ClassCounters {
#define CACHET_X(n) Counter n;
  CACHET_CLASS_COUNTERS(CACHET_X)
#undef CACHET_X
  std::atomic<uint32_t> evicted_time{0};  // age of the last evicted item, seconds
};

// Store-wide counters of one worker, each a StoreStats field of the same name.
#define CACHET_STORE_COUNTERS(X)                                                         \
  X(total_items) X(crash_dropped) X(get_expired) X(get_flushed) X(transient_added)      \
  X(transient_untracked) X(transient_reaped) X(crawler_reclaimed) X(crawler_items_checked) \
  X(slab_reassign_rescues) X(slab_reassign_evictions_nomem) X(slab_reassign_busy_items)  \
  X(crash_orphans_freed)

struct alignas(kCacheLine) WorkerCounters {
#define CACHET_X(n) Counter n;
  CACHET_STORE_COUNTERS(CACHET_X)
#undef CACHET_X
  std::array<ClassCounters, kMaxClasses> cls;
};

}  // namespace cachet::store
