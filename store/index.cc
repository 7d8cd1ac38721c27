// Index writers: bucket locking, slot insertion with overflow chains, and linear-hashing splits.
#include "store/index.hh"

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
      overflow_(arena.at<Bucket>(g.off_overflow)) {
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

Index::Guard Index::lock(uint64_t hash) {
  for (;;) {
    uint64_t shape = hdr_->shape.load(std::memory_order_acquire);
    Bucket* b = &buckets_[address(hash, shape)];
    uint32_t v = b->version.load(std::memory_order_relaxed);
    if ((v & 1) == 0 &&
        b->version.compare_exchange_weak(v, v + 1, std::memory_order_acquire)) {
      // A split of this very bucket needs its lock, so the address is now stable; check that
      // no split moved the key between reading the shape and taking the lock.
      if (address(hash, hdr_->shape.load(std::memory_order_acquire)) == address(hash, shape))
        return Guard(b);
      b->version.fetch_add(1, std::memory_order_release);
    }
    _mm_pause();
  }
}

std::atomic<uint64_t>* Index::slot_of(const Guard& g, uint64_t off) {
  for (Bucket* b = g.bucket(); b; b = overflow_of(b))
    for (int i = 0; i < Bucket::kSlots; ++i)
      if (slot_offset(b->slot[i].load(std::memory_order_relaxed)) == off) return &b->slot[i];
  return nullptr;
}

bool Index::insert(const Guard& g, uint16_t tag, uint64_t off) {
  Bucket* last = nullptr;
  for (Bucket* b = g.bucket(); b; b = overflow_of(b)) {
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
    hdr_->overflow_free = b->overflow;
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

// Splits bucket `split` into itself and `split + 2^level`. Only the old bucket is locked: the
// new one is unreachable until the new shape is published, which happens before the unlock.
void Index::split_one() {
  uint64_t shape = hdr_->shape.load(std::memory_order_acquire);
  uint32_t level = static_cast<uint32_t>(shape >> 32);
  uint64_t split = shape & 0xffffffffu;
  if (count(shape) >= hdr_->max_buckets || level >= 32) return;
  Bucket* old_b = &buckets_[split];
  Bucket* new_b = &buckets_[split + (uint64_t{1} << level)];

  uint32_t v;
  do {
    v = old_b->version.load(std::memory_order_relaxed);
    if (v & 1) {
      _mm_pause();
      continue;
    }
  } while ((v & 1) || !old_b->version.compare_exchange_weak(v, v + 1, std::memory_order_acquire));

  // Reused between splits so that growing allocates only while chains get longer.
  static thread_local std::vector<uint64_t> stay, move;
  static thread_local std::vector<Bucket*> spare;
  stay.clear();
  move.clear();
  spare.clear();
  for (Bucket* b = old_b; b; b = overflow_of(b)) {
    if (b != old_b) spare.push_back(b);
    for (auto& s : b->slot) {
      uint64_t sv = s.load(std::memory_order_relaxed);
      if (!sv) continue;
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
  old_b->version.fetch_add(1, std::memory_order_release);
}

void Index::break_stale_locks() {
  uint64_t n = buckets_in_use();
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t v = buckets_[i].version.load(std::memory_order_relaxed);
    if (v & 1) buckets_[i].version.store(v + 1, std::memory_order_relaxed);
  }
  hdr_->overflow_lock.word.store(0);
  hdr_->grow_lock.word.store(0);
}

}  // namespace cachet::store
