// Store figures: per-worker counters summed on read, item and page counts read from the arena.
#include <algorithm>

#include "common/clock.hh"
#include "store/counters.hh"
#include "store/store.hh"

namespace cachet::store {

StoreStats Store::stats() const {
  StoreStats s{};
  for (unsigned i = 1; i <= slabs_.n_classes(); ++i) {
    const ClassState& c = slabs_.cls(i);
    const uint64_t hidden = c.hidden.load(std::memory_order_relaxed);
    const uint64_t n = c.number.load(std::memory_order_relaxed);
    s.curr_items += n > hidden ? n - hidden : 0;
    s.hidden_items += hidden;
    s.bytes += c.mem_requested.load(std::memory_order_relaxed);
    s.kv_bytes += c.kv_bytes.load(std::memory_order_relaxed);
    const uint64_t chunks = uint64_t{c.n_pages} * c.chunks_per_page;
    const uint64_t free = std::min(chunks, slabs_.free_chunks(i));
    s.mem_bytes += (chunks - free) * c.chunk_size;
  }
  for (const auto& w : counters_) {
#define CACHET_X(n) s.n += w->n.get();
    CACHET_STORE_COUNTERS(CACHET_X)
#undef CACHET_X
    for (unsigned i = 1; i <= slabs_.n_classes(); ++i) {
      const ClassCounters& c = w->cls[i];
      s.evictions += c.evicted.get();
      s.reclaimed += c.reclaimed.get();
      s.expired_unfetched += c.expired_unfetched.get();
      s.evicted_unfetched += c.evicted_unfetched.get();
    }
  }
  s.limit_maxbytes = uint64_t{slabs_.n_pages()} * slabs_.page_size();
  s.total_malloced = uint64_t{slabs_.pages_given()} * slabs_.page_size();
  s.slab_global_page_pool = slabs_.n_pages() - slabs_.pages_given();
  s.slabs_moved = slabs_.pages_moved();
  s.slabs_moved_inline = slabs_.pages_moved_inline();
  s.slab_reassign_running = hdr_->move_page.load(std::memory_order_relaxed) != kNoPage ? 1 : 0;
  s.hash_power_level = index_.level();
  s.hash_bytes = index_.bytes();
  s.hash_is_expanding = index_.expanding() ? 1 : 0;
  s.transient_items = wheel_.entries();
  s.transient_bytes = wheel_.bytes();
  s.mem_bytes += s.hash_bytes + index_.overflow_in_use() * sizeof(Bucket) + s.transient_bytes;
  return s;
}

std::vector<ClassStats> Store::class_stats() const {
  std::vector<ClassStats> out;
  const uint32_t now = common::now_unix();
  for (unsigned i = 1; i <= slabs_.n_classes(); ++i) {
    const ClassState& c = slabs_.cls(i);
    if (c.n_pages == 0) continue;
    ClassStats s{};
    s.id = i;
    s.chunk_size = c.chunk_size;
    s.chunks_per_page = c.chunks_per_page;
    s.total_pages = c.n_pages;
    s.total_chunks = uint64_t{c.n_pages} * c.chunks_per_page;
    s.free_chunks = slabs_.free_chunks(i);
    s.used_chunks = s.total_chunks - s.free_chunks;
    s.mem_requested = c.mem_requested.load(std::memory_order_relaxed);
    s.number = c.number.load(std::memory_order_relaxed) - c.hidden.load(std::memory_order_relaxed);
    const Item* hand = slabs_.hand_item(i);
    s.age = hand && hand->atime <= now ? now - hand->atime : 0;
    for (const auto& w : counters_) {
      const ClassCounters& k = w->cls[i];
#define CACHET_X(n) s.n += k.n.get();
      CACHET_CLASS_COUNTERS(CACHET_X)
#undef CACHET_X
      s.evicted_time = std::max(s.evicted_time, k.evicted_time.load(std::memory_order_relaxed));
    }
    out.push_back(s);
  }
  return out;
}

void Store::reset_stats() {
  slabs_.reset_moved();
  for (auto& w : counters_) {
#define CACHET_X(n) w->n.reset();
    CACHET_STORE_COUNTERS(CACHET_X)
#undef CACHET_X
    for (auto& c : w->cls) {
#define CACHET_X(n) c.n.reset();
      CACHET_CLASS_COUNTERS(CACHET_X)
#undef CACHET_X
      c.evicted_time.store(0, std::memory_order_relaxed);
    }
  }
}

}  // namespace cachet::store
