// The hash index: buckets of 7 tagged slots in the arena, grown one bucket at a time by linear
// hashing. Readers take no lock (per-bucket seqlock); writers lock one bucket.
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
    for (;;) {
      uint64_t shape = hdr_->shape.load(std::memory_order_acquire);
      Bucket* b = &buckets_[address(hash, shape)];
      uint32_t v = b->version.load(std::memory_order_acquire);
      if ((v & 1) == 0) return {shape, b, v};
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
    for (int hops = 0; b && hops < kMaxChain; ++hops) {
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
      if (b_) b_->version.fetch_add(1, std::memory_order_release);
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
    for (Bucket* b = g.bucket(); b; b = overflow_of(b)) {
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
    for (Bucket* b = g.bucket(); b; b = overflow_of(b))
      for (int i = 0; i < Bucket::kSlots; ++i)
        if (b->slot[i].load(std::memory_order_relaxed)) f(b->slot[i]);
  }

  // Item accounting drives growth.
  void on_link() { hdr_->items.fetch_add(1, std::memory_order_relaxed); }
  void on_unlink() { hdr_->items.fetch_sub(1, std::memory_order_relaxed); }
  // Splits a bucket or two when the load asks for it. Never call with a bucket lock held.
  void maybe_grow();

  uint32_t level() const { return static_cast<uint32_t>(hdr_->shape.load() >> 32); }
  uint64_t buckets_in_use() const { return count(hdr_->shape.load()); }
  uint64_t bytes() const { return buckets_in_use() * sizeof(Bucket); }
  bool expanding() const;
  uint64_t overflow_in_use() const { return hdr_->overflow_in_use.load(); }

  // Resets every bucket lock left held by a process that died (caller guarantees no other
  // process is attached).
  void break_stale_locks();

 private:
  static constexpr int kMaxChain = 4096;

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
};

}  // namespace cachet::store
