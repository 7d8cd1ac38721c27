// Index writers: bucket locking, slot insertion with overflow chains, and linear-hashing splits.
#include "store/index.hh"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/hash.hh"

namespace cachet::store {

void SpinLock::lock() {
  for (;;) {
    uint32_t expected = 0;
    if (word.compare_exchange_weak(expected, 1, std::memory_order_acquire)) return;
    while (word.load(std::memory_order_relaxed) != 0) _mm_pause();
  }
}

Index::Index(const Arena& arena, const Geometry& g, bool fresh)
    : arena_(arena),
      hdr_(arena.at<IndexHeader>(g.off_index)),
      buckets_(arena.at<Bucket>(g.off_buckets)),
      overflow_(arena.at<Bucket>(g.off_overflow)),
      items_lo_(g.off_items),
      items_hi_(g.off_items + uint64_t{g.n_pages} * g.page_size) {
  if (!fresh) return;
  hdr_->max_buckets = g.max_buckets;
  hdr_->min_level = g.min_level;
  hdr_->overflow_max = g.overflow_max;
  hdr_->overflow_free = 0;
  hdr_->overflow_used = 0;
  hdr_->items.store(0);
  hdr_->overflow_in_use.store(0);
  hdr_->shape.store(uint64_t{g.min_level} << 32);
}

namespace {

// Which bucket each thread of the process is locking or holds (Index::holding).
constexpr size_t kHolders = 4096;
struct alignas(64) Holder {
  std::atomic<const Bucket*> bucket{nullptr};
  std::atomic<bool> taken{false};
};
Holder holders[kHolders];
std::atomic<size_t> holders_used{0};  // entries below this may be taken

// The calling thread's entry: claimed on first use, given back when the thread ends.
struct HolderSlot {
  HolderSlot() {
    for (size_t i = 0; i < kHolders; ++i) {
      bool free = false;
      if (!holders[i].taken.compare_exchange_strong(free, true)) continue;
      h = &holders[i];
      size_t used = holders_used.load();
      while (used < i + 1 && !holders_used.compare_exchange_weak(used, i + 1)) {
      }
      return;
    }
    std::fprintf(stderr, "cachet store: more than %zu threads lock index buckets\n", kHolders);
    std::abort();
  }
  ~HolderSlot() {
    h->bucket.store(nullptr);
    h->taken.store(false);
  }
  Holder* h = nullptr;
};

}  // namespace

void Index::holding(const Bucket* b) {
  thread_local HolderSlot mine;
  assert(!b || !mine.h->bucket.load(std::memory_order_relaxed));  // one bucket at a time
  mine.h->bucket.store(b, std::memory_order_relaxed);
}

bool Index::try_lock(Bucket* b, uint32_t v) {
  holding(b);
  if (b->version.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) return true;
  holding(nullptr);
  return false;
}

void Index::release_if_stale(Bucket* b, uint32_t v) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (b->version.load(std::memory_order_acquire) != v) return;
  for (size_t i = 0, n = holders_used.load(std::memory_order_acquire); i < n; ++i)
    if (holders[i].bucket.load(std::memory_order_acquire) == b) return;
  b->version.compare_exchange_strong(v, v + 1, std::memory_order_acq_rel);
}

Index::Guard Index::lock(uint64_t hash) {
  for (uint32_t spins = 0;;) {
    uint64_t shape = hdr_->shape.load(std::memory_order_acquire);
    Bucket* b = &buckets_[address(hash, shape)];
    uint32_t v = b->version.load(std::memory_order_acquire);
    if (v & 1) {
      if (++spins % kStaleSpins == 0) release_if_stale(b, v);
    } else if (try_lock(b, v)) {
      // A split of this very bucket needs its lock, so the address is now stable; check that
      // no split moved the key between reading the shape and taking the lock.
      if (address(hash, hdr_->shape.load(std::memory_order_acquire)) == address(hash, shape))
        return Guard(b);
      Guard(b).unlock();
    }
    _mm_pause();
  }
}

std::atomic<uint64_t>* Index::slot_of(const Guard& g, uint64_t off) {
  uint32_t hops = 0;
  for (Bucket* b = g.bucket(); b && hops++ <= kMaxChain; b = overflow_of(b))
    for (int i = 0; i < Bucket::kSlots; ++i)
      if (slot_offset(b->slot[i].load(std::memory_order_relaxed)) == off) return &b->slot[i];
  return nullptr;
}

bool Index::insert(const Guard& g, uint16_t tag, uint64_t off) {
  Bucket* last = nullptr;
  uint32_t hops = 0;
  for (Bucket* b = g.bucket(); b && hops++ <= kMaxChain; b = overflow_of(b)) {
    for (int i = 0; i < Bucket::kSlots; ++i) {
      if (b->slot[i].load(std::memory_order_relaxed) == 0) {
        b->slot[i].store(make_slot(tag, off), std::memory_order_release);
        return true;
      }
    }
    last = b;
  }
  Bucket* ob = overflow_alloc();
  if (!ob) return false;
  ob->slot[0].store(make_slot(tag, off), std::memory_order_relaxed);
  last->overflow = static_cast<uint32_t>(ob - overflow_) + 1;
  return true;
}

Bucket* Index::overflow_alloc() {
  hdr_->overflow_lock.lock();
  Bucket* b = nullptr;
  if (hdr_->overflow_free != 0) {
    b = &overflow_[hdr_->overflow_free - 1];
    // A damaged link ends the free list (the buckets past it are lost, never misused).
    hdr_->overflow_free = b->overflow <= hdr_->overflow_used ? b->overflow : 0;
  } else if (hdr_->overflow_used < hdr_->overflow_max) {
    b = &overflow_[hdr_->overflow_used++];
  }
  hdr_->overflow_lock.unlock();
  if (!b) return nullptr;
  b->overflow = 0;
  for (auto& s : b->slot) s.store(0, std::memory_order_relaxed);
  hdr_->overflow_in_use.fetch_add(1, std::memory_order_relaxed);
  return b;
}

void Index::overflow_free(Bucket* b) {
  hdr_->overflow_lock.lock();
  b->overflow = hdr_->overflow_free;
  hdr_->overflow_free = static_cast<uint32_t>(b - overflow_) + 1;
  hdr_->overflow_lock.unlock();
  hdr_->overflow_in_use.fetch_sub(1, std::memory_order_relaxed);
}

bool Index::expanding() const {
  return hdr_->items.load(std::memory_order_relaxed) > buckets_in_use() * 5;
}

void Index::maybe_grow() {
  for (int i = 0; i < 2; ++i) {
    uint64_t n = buckets_in_use();
    if (hdr_->items.load(std::memory_order_relaxed) <= n * 5 || n >= hdr_->max_buckets) return;
    if (hdr_->grow_lock.word.exchange(1, std::memory_order_acquire) != 0) return;
    split_one();
    hdr_->grow_lock.unlock();
  }
}

uint32_t Index::grow_ahead(uint32_t max_splits) {
  uint32_t done = 0;
  while (done < max_splits) {
    const uint64_t n = buckets_in_use();
    if (hdr_->items.load(std::memory_order_relaxed) <= n * 4 || n >= hdr_->max_buckets) break;
    if (hdr_->grow_lock.word.exchange(1, std::memory_order_acquire) != 0) break;
    split_one();
    hdr_->grow_lock.unlock();
    ++done;
  }
  return done;
}

// Splits bucket `split` into itself and `split + 2^level`. Only the old bucket is locked: the
// new one is unreachable until the new shape is published, which happens before the unlock.
void Index::split_one() {
  uint64_t shape = hdr_->shape.load(std::memory_order_acquire);
  uint32_t level = static_cast<uint32_t>(shape >> 32);
  uint64_t split = shape & 0xffffffffu;
  if (count(shape) >= hdr_->max_buckets || level >= 32) return;
  Bucket* old_b = &buckets_[split];
  Bucket* new_b = &buckets_[split + (uint64_t{1} << level)];

  for (uint32_t spins = 1;; ++spins) {
    const uint32_t v = old_b->version.load(std::memory_order_acquire);
    if ((v & 1) == 0 && try_lock(old_b, v)) break;
    if ((v & 1) && spins % kStaleSpins == 0) release_if_stale(old_b, v);
    _mm_pause();
  }

  // Reused between splits so that growing allocates only while chains get longer.
  static thread_local std::vector<uint64_t> stay, move;
  static thread_local std::vector<Bucket*> spare;
  stay.clear();
  move.clear();
  spare.clear();
  for (Bucket* b = old_b; b && spare.size() <= kMaxChain; b = overflow_of(b)) {
    if (b != old_b) {
      if (std::find(spare.begin(), spare.end(), b) != spare.end()) break;  // a looped chain
      spare.push_back(b);
    }
    for (auto& s : b->slot) {
      uint64_t sv = s.load(std::memory_order_relaxed);
      if (!sv) continue;
      if (!in_items(slot_offset(sv))) continue;  // a damaged slot is dropped, not followed
      const Item* it = arena_.at<Item>(slot_offset(sv));
      uint64_t h = common::hash_key({it->key(), it->nkey});
      ((h >> level) & 1 ? move : stay).push_back(sv);
    }
  }
  // Rebuild both chains, reusing the old chain's overflow buckets first.
  auto fill = [&](Bucket* head, const std::vector<uint64_t>& vals) {
    Bucket* b = head;
    b->overflow = 0;
    size_t i = 0;
    for (;;) {
      for (auto& s : b->slot) s.store(i < vals.size() ? vals[i++] : 0, std::memory_order_relaxed);
      if (i >= vals.size()) break;
      Bucket* next = nullptr;
      if (!spare.empty()) {
        next = spare.back();
        spare.pop_back();
      } else {
        next = overflow_alloc();
      }
      if (!next) break;  // cannot happen: the two chains hold no more than the old one did
      next->overflow = 0;
      b->overflow = static_cast<uint32_t>(next - overflow_) + 1;
      b = next;
    }
  };
  new_b->version.store(0, std::memory_order_relaxed);
  fill(new_b, move);
  fill(old_b, stay);
  for (Bucket* b : spare) overflow_free(b);

  uint64_t next_shape = (split + 1 == (uint64_t{1} << level))
                            ? (uint64_t{level + 1} << 32)
                            : ((uint64_t{level} << 32) | (split + 1));
  hdr_->shape.store(next_shape, std::memory_order_release);
  Guard(old_b).unlock();
}

void Index::break_stale_locks(bool buckets) {
  for (uint64_t i = 0, n = buckets ? buckets_in_use() : 0; i < n; ++i) {
    uint32_t v = buckets_[i].version.load(std::memory_order_relaxed);
    if (v & 1) buckets_[i].version.store(v + 1, std::memory_order_relaxed);
  }
  hdr_->overflow_lock.word.store(0);
  hdr_->grow_lock.word.store(0);
}

}  // namespace cachet::store
