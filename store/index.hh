// The hash index: buckets of 7 tagged slots in the arena, grown one bucket at a time by linear
// hashing. Readers take no lock (per-bucket seqlock); writers lock one bucket at a time. A
// bucket lock that no thread of this process holds (left by a process that died, or by damage
// to the arena) is released by whoever has waited on it a while, so none stops the store.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "store/arena.hh"
#include "store/layout.hh"

namespace cachet::store {

class Index {
 public:
  // Binds to the arena's index region; initializes it when the arena is new.
  Index(const Arena& arena, const Geometry& g, bool fresh);

  static uint16_t tag_of(uint64_t hash) { return static_cast<uint16_t>(hash >> 48); }

  // Whether `off` may be an item's offset: inside the item pages, 8-byte aligned as every
  // chunk is. Checked before any slot's item is read: a damaged arena's slots may hold anything.
  bool in_items(uint64_t off) const {
    return off >= items_lo_ && off < items_hi_ && (off & (alignof(Item) - 1)) == 0;
  }

  // A reader's snapshot: which bucket the key maps to and the bucket's version then.
  struct Ticket {
    uint64_t shape;
    Bucket* bucket;
    uint32_t version;
  };

  // The bucket the hash maps to now (a hint: it may split at any time).
  const Bucket* bucket_hint(uint64_t hash) const {
    return &buckets_[address(hash, hdr_->shape.load(std::memory_order_relaxed))];
  }

  // Starts a lock-free read; waits out a writer that holds the bucket right now.
  Ticket read_begin(uint64_t hash) const {
    for (uint32_t spins = 1;; ++spins) {
      uint64_t shape = hdr_->shape.load(std::memory_order_acquire);
      Bucket* b = &buckets_[address(hash, shape)];
      uint32_t v = b->version.load(std::memory_order_acquire);
      if ((v & 1) == 0) return {shape, b, v};
      if (spins % kStaleSpins == 0) release_if_stale(b, v);
      _mm_pause();
    }
  }
  // True when nothing the reader looked at can have changed since read_begin.
  bool read_valid(const Ticket& t) const {
    std::atomic_thread_fence(std::memory_order_acquire);
    return t.bucket->version.load(std::memory_order_relaxed) == t.version &&
           hdr_->shape.load(std::memory_order_relaxed) == t.shape;
  }

  // Visits the offsets in the chain of `b` whose tag matches; stops at the first offset for
  // which match(offset) is true and returns it (0 when none). Safe without the lock: a racing
  // writer is caught by read_valid.
  template <class Match>
  uint64_t find(const Bucket* b, uint16_t tag, Match&& match) const {
    for (uint32_t hops = 0; b && hops <= kMaxChain; ++hops) {
      for (int i = 0; i < Bucket::kSlots; ++i) {
        uint64_t s = b->slot[i].load(std::memory_order_acquire);
        if (s && slot_tag(s) == tag && match(slot_offset(s))) return slot_offset(s);
      }
      b = overflow_of(b);
    }
    return 0;
  }

  // Exclusive hold of the bucket a hash maps to (and its overflow chain).
  class Guard {
   public:
    Guard() = default;
    Guard(Guard&& o) noexcept : b_(o.b_) { o.b_ = nullptr; }
    Guard& operator=(Guard&&) = delete;
    ~Guard() { unlock(); }
    void unlock() {
      if (!b_) return;
      b_->version.fetch_add(1, std::memory_order_release);
      holding(nullptr);
      b_ = nullptr;
    }
    Bucket* bucket() const { return b_; }

   private:
    friend class Index;
    explicit Guard(Bucket* b) : b_(b) {}
    Bucket* b_ = nullptr;
  };
  Guard lock(uint64_t hash);

  // Under a guard: the slot holding a matching offset, or nullptr.
  template <class Match>
  std::atomic<uint64_t>* find_slot(const Guard& g, uint16_t tag, Match&& match) {
    uint32_t hops = 0;
    for (Bucket* b = g.bucket(); b && hops++ <= kMaxChain; b = overflow_of(b)) {
      for (int i = 0; i < Bucket::kSlots; ++i) {
        uint64_t s = b->slot[i].load(std::memory_order_relaxed);
        if (s && slot_tag(s) == tag && match(slot_offset(s))) return &b->slot[i];
      }
    }
    return nullptr;
  }
  // Under a guard: the slot that holds exactly this offset, or nullptr.
  std::atomic<uint64_t>* slot_of(const Guard& g, uint64_t off);

  // Under a guard: puts (tag, off) in a free slot, adding an overflow bucket when the chain is
  // full. Returns false when no overflow bucket is left; the caller must make room.
  bool insert(const Guard& g, uint16_t tag, uint64_t off);
  // Under a guard: every occupied slot of the chain, for the caller to pick a victim.
  template <class F>
  void for_each_slot(const Guard& g, F&& f) {
    uint32_t hops = 0;
    for (Bucket* b = g.bucket(); b && hops++ <= kMaxChain; b = overflow_of(b))
      for (int i = 0; i < Bucket::kSlots; ++i)
        if (b->slot[i].load(std::memory_order_relaxed)) f(b->slot[i]);
  }

  // Item accounting drives growth.
  void on_link() { hdr_->items.fetch_add(1, std::memory_order_relaxed); }
  void on_unlink() { hdr_->items.fetch_sub(1, std::memory_order_relaxed); }
  // Splits a bucket or two when the load asks for it (past 5 items per bucket). Never call
  // with a bucket lock held.
  void maybe_grow();
  // For a background thread: splits up to max_splits buckets while the load is past 4 items
  // per bucket, so that the writers' inline splits stay rare. Returns the splits done.
  uint32_t grow_ahead(uint32_t max_splits);

  uint32_t level() const { return static_cast<uint32_t>(hdr_->shape.load() >> 32); }
  uint64_t buckets_in_use() const { return count(hdr_->shape.load()); }
  uint64_t bytes() const { return buckets_in_use() * sizeof(Bucket); }
  bool expanding() const;
  uint64_t overflow_in_use() const { return hdr_->overflow_in_use.load(); }

  // Resets the overflow pool's and the splitter's locks and, with buckets, every bucket lock
  // left held by a process that died (caller guarantees no other process is attached).
  void break_stale_locks(bool buckets);

 private:
  // The longest overflow chain walked: a chain of a damaged arena may loop.
  static constexpr uint32_t kMaxChain = 4096;
  // Spins on a locked bucket between two looks at whether anyone holds it (about 0.5 ms).
  static constexpr uint32_t kStaleSpins = 4096;

  // Records, in a process-wide table, the bucket the calling thread is about to lock or holds
  // (nullptr: none). Set before the locking compare-and-swap, so whoever sees the lock taken
  // sees the record too.
  static void holding(const Bucket* b);
  // Unlocks b when it is still locked at version v and no thread of this process holds it:
  // the lock was left by a process that died or by damage to the arena. A real holder's
  // unlock or relock changes the version, so the compare-and-swap can never take its lock.
  static void release_if_stale(Bucket* b, uint32_t v);
  // Takes b's lock for the calling thread if it is free at version v.
  static bool try_lock(Bucket* b, uint32_t v);

  static uint64_t count(uint64_t shape) {
    return (uint64_t{1} << (shape >> 32)) + (shape & 0xffffffffu);
  }
  static uint64_t address(uint64_t hash, uint64_t shape) {
    uint32_t level = static_cast<uint32_t>(shape >> 32);
    uint64_t split = shape & 0xffffffffu;
    uint64_t b = hash & ((uint64_t{1} << level) - 1);
    if (b < split) b = hash & ((uint64_t{2} << level) - 1);
    return b;
  }
  Bucket* overflow_of(const Bucket* b) const {
    uint32_t o = b->overflow;
    return (o == 0 || o > hdr_->overflow_max) ? nullptr : &overflow_[o - 1];
  }
  Bucket* overflow_alloc();
  void overflow_free(Bucket* b);
  void split_one();

  const Arena& arena_;
  IndexHeader* hdr_;
  Bucket* buckets_;
  Bucket* overflow_;
  uint64_t items_lo_, items_hi_;  // the item pages
};

}  // namespace cachet::store
