// Slab allocator over the arena's pages: classes growing by a factor up to one page, free chunks
// listed per page (and pages with free chunks per class), lazy carving of new pages, a CLOCK hand
// over each class's chunks for eviction, and the page-draining steps the page mover uses.
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
  const PageInfo& page(uint32_t p) const { return pages_[p]; }

  // What the CLOCK hand may do with a linked item: keep it (recently used), or take it after
  // the caller unlinked it (true returned by `unlink`).
  using UnlinkFn = common::FunctionRef<bool(Item*)>;

  // A chunk of class `cls`, in order of cost: a free chunk of the class or unused page space;
  // a fresh page from the arena; a sparse() page, the emptiest, of another class; an eviction
  // by the class's CLOCK hand; a page taken from the class holding the most. `unlink` is called
  // for each item to evict and must take only bucket locks. The chunk's state is 0 (unlinked,
  // not free) and it carries the arena's current crash epoch. nullptr when nothing could be
  // found. Takes class locks one at a time; call with none held. With may_move false, only the
  // class's free chunks, its pages' unused space and its CLOCK hand are tried (no page joins
  // or leaves the class: the page mover's relocation uses that).
  Item* alloc(unsigned cls, UnlinkFn unlink, bool may_move = true);
  // Returns an unlinked chunk to its page's free list.
  void free(Item* it);

  // ---- The page mover's steps (store/upkeep.hh). Each takes one class lock for O(1) work. ----

  // A free chunk of class `cls` to relocate an item into: from the class's free chunks or its
  // unused page space, never a fresh page and never by evicting. In flight on return.
  Item* take_free(unsigned cls);
  // Starts emptying page p: its free chunks and unused space leave the class's free space, and
  // allocation and the CLOCK hand skip it from now on. False when p is not a class's page or is
  // draining already.
  bool begin_drain(uint32_t p);
  // Gives drained page p (no chunk used any more) to class `to`. False, changing nothing,
  // while a chunk of it is still used.
  bool finish_drain(uint32_t p, unsigned to);
  // Gives a draining page back to its class.
  void cancel_drain(uint32_t p);

  // The chunk at index idx of page p in the geometry of the page's class (as read now).
  Item* chunk_at(uint32_t p, uint32_t idx) const {
    return chunk(p, idx, classes_[pages_[p].clsid]);
  }
  uint32_t page_of(const Item* it) const {
    return static_cast<uint32_t>((reinterpret_cast<const char*>(it) - items_) / hdr_->page_size);
  }

  // After a crash (arena epoch now `epoch`), under the page's class lock: rebuilds page p's
  // free list from the chunks' states and frees the chunks the dead process had taken but
  // never linked (neither linked nor free, stamped with an older epoch). Returns how many.
  uint32_t repair_page(uint32_t p, uint32_t epoch);
  // At an attach after a crash, before serving: rebuilds each class's list of pages with free
  // chunks and its free count from the page table (O(pages), never O(items)).
  void relist_free_pages();

  uint64_t pages_moved() const { return moved_.load(std::memory_order_relaxed); }
  uint64_t pages_moved_inline() const { return moved_inline_.load(std::memory_order_relaxed); }
  void reset_moved() {
    moved_.store(0, std::memory_order_relaxed);
    moved_inline_.store(0, std::memory_order_relaxed);
  }

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
  uint32_t index_in_page(const Item* it, const ClassState& c) const {
    return static_cast<uint32_t>(
        ((reinterpret_cast<const char*>(it) - items_) % hdr_->page_size) / c.chunk_size);
  }
  // Under the class lock: the page free lists and the class's list of pages with free chunks.
  void push_free(ClassState& c, uint32_t p, Item* it);
  Item* pop_free(ClassState& c, uint32_t p);
  void list_page(ClassState& c, uint32_t p);
  void unlist_page(ClassState& c, uint32_t p);
  // Under the class lock: a chunk from the free chunks, unused page space or a fresh page.
  Item* take_own(unsigned cls, bool fresh_page);
  // Whether page p can hand out its first free chunk: a page of class cls on the class's list,
  // whose first free chunk is a carved chunk marked free. A damaged arena's list is cut where
  // it is not (the chunks left on it are lost, never handed out twice).
  bool free_head_ok(unsigned cls, uint32_t p) const;
  Item* carve(ClassState& c);
  // Under the class lock: takes page p out of the class's carving queue.
  void uncarve(ClassState& c, uint32_t p);
  void claim(Item* it, unsigned cls);
  bool add_page(unsigned cls);
  Item* evict(ClassState& c, UnlinkFn unlink);
  // Moves page p (or, with kNoPage, the CLOCK-hand page of the class holding the most pages)
  // to class `to`, evicting what it holds. With sparse_only, only a page that is still
  // sparse(). Gives up, leaving the page where it was, when a chunk of it is in flight
  // (allocated, or unlinked but not yet freed, by another thread).
  bool move_page(uint32_t p, unsigned to, bool sparse_only, UnlinkFn unlink);
  // Under the class lock of `from`: empties page p.
  bool release_page(unsigned from, uint32_t p, UnlinkFn unlink);
  // Under the class lock: takes an empty page out of the class (chain, hand, carving, free list).
  void unthread_page(ClassState& c, uint32_t p);
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
  std::atomic<uint64_t> moved_inline_{0};
  static constexpr int kCandidates = 8;
  static constexpr uint32_t kSparseMinAgeMs = 100;
  std::array<std::atomic<uint32_t>, kCandidates> candidates_;
  std::atomic<uint64_t> last_scan_ns_{0};
  std::atomic<bool> scanning_{false};
};

}  // namespace cachet::store
