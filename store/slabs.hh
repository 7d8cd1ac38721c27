// Slab allocator over the arena's pages: classes growing by a factor up to one page, per-class
// free lists, lazy carving of new pages, and a CLOCK hand over each class's chunks for eviction.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "common/function_ref.hh"
#include "store/arena.hh"
#include "store/layout.hh"

namespace cachet::store {

class Slabs {
 public:
  Slabs(const Arena& arena, const Geometry& g, bool fresh);

  unsigned n_classes() const { return n_classes_; }
  // The smallest class whose chunks hold `total` bytes, 0 when none does.
  unsigned class_for(size_t total) const;
  uint32_t chunk_size(unsigned cls) const { return classes_[cls].chunk_size; }
  ClassState& cls(unsigned id) { return classes_[id]; }
  const ClassState& cls(unsigned id) const { return classes_[id]; }

  // What the CLOCK hand may do with a linked item: keep it (recently used), or take it after
  // the caller unlinked it (true returned by `unlink`).
  using UnlinkFn = common::FunctionRef<bool(Item*)>;

  // A chunk of class `cls`, in order of cost: the class's free list or unused page space; a
  // fresh page from the arena; a sparse() page, the emptiest, of another class; an
  // eviction by the class's CLOCK hand; a page taken from the class holding the most.
  // `unlink` is called for each item to evict and must take only bucket locks. The chunk's
  // state is 0 (unlinked, not free). nullptr when nothing could be found. Takes class locks
  // one at a time; call with none held.
  Item* alloc(unsigned cls, UnlinkFn unlink);
  // Returns an unlinked chunk to its class's free list.
  void free(Item* it);

  uint64_t pages_moved() const { return moved_.load(std::memory_order_relaxed); }

  // The linked item under the CLOCK hand of a class, for `stats items` age (may be nullptr).
  const Item* hand_item(unsigned cls) const;
  uint64_t free_chunks(unsigned cls) const;
  uint32_t pages_given() const { return hdr_->pages_given.load(std::memory_order_relaxed); }
  uint32_t n_pages() const { return hdr_->n_pages; }
  uint64_t page_size() const { return hdr_->page_size; }

  // Resets the class and page locks of a process that died (no other process attached).
  void break_stale_locks();

 private:
  Item* chunk(uint32_t page, uint32_t idx, const ClassState& c) const {
    return reinterpret_cast<Item*>(items_ + page * hdr_->page_size +
                                   uint64_t{idx} * c.chunk_size);
  }
  uint32_t page_of(const Item* it) const {
    return static_cast<uint32_t>((reinterpret_cast<const char*>(it) - items_) / hdr_->page_size);
  }
  // Under the class lock: a chunk from the free list, unused page space or a fresh page.
  Item* take_own(unsigned cls);
  Item* carve(ClassState& c);
  bool add_page(unsigned cls);
  Item* evict(ClassState& c, UnlinkFn unlink);
  // Moves page p (or, with kNoPage, the CLOCK-hand page of the class holding the most pages)
  // to class `to`, evicting what it holds. With sparse_only, only a page that is still
  // sparse(). Gives up, leaving the page where it was, when a chunk of it is in flight
  // (allocated, or unlinked but not yet freed, by another thread).
  bool move_page(uint32_t p, unsigned to, bool sparse_only, UnlinkFn unlink);
  // Under the class lock of `from`: empties page p.
  bool release_page(unsigned from, uint32_t p, UnlinkFn unlink);
  void give_page(unsigned cls, uint32_t p);
  // A page its class can spare: the class has over 2.5 pages of free chunks, the page is at
  // most half live and was not given in the last kSparseMinAgeMs.
  bool sparse(uint32_t p) const;
  // A sparse page of another class than `except`, or kNoPage. Rescans at most every 10 ms.
  uint32_t sparse_candidate(unsigned except);

  const Arena& arena_;
  ArenaHeader* hdr_;
  ClassState* classes_;
  PageInfo* pages_;
  char* items_;
  unsigned n_classes_;
  std::atomic<uint64_t> moved_{0};
  static constexpr int kCandidates = 8;
  static constexpr uint32_t kSparseMinAgeMs = 100;
  std::array<std::atomic<uint32_t>, kCandidates> candidates_;
  std::atomic<uint64_t> last_scan_ns_{0};
  std::atomic<bool> scanning_{false};
};

}  // namespace cachet::store
