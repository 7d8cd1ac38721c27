// Slab allocation and CLOCK eviction. Lock order: a class lock may be held while taking a
// bucket lock (eviction), never the other way round.
#include "store/slabs.hh"

#include <algorithm>

#include "common/clock.hh"

namespace cachet::store {

Slabs::Slabs(const Arena& arena, const Geometry& g, bool fresh)
    : arena_(arena),
      hdr_(arena.header()),
      classes_(arena.at<ClassState>(g.off_classes)),
      pages_(arena.at<PageInfo>(g.off_pages)),
      items_(arena.at<char>(g.off_items)),
      n_classes_(g.n_classes) {
  for (auto& c : candidates_) c.store(kNoPage, std::memory_order_relaxed);
  if (!fresh) return;
  for (unsigned i = 1; i <= g.n_classes; ++i) {
    ClassState& c = classes_[i];
    c.chunk_size = g.class_size[i];
    c.chunks_per_page = static_cast<uint32_t>(g.page_size / g.class_size[i]);
    c.first_page = c.last_page = c.carve_page = c.hand_page = kNoPage;
    c.carve_next = c.chunks_per_page;
  }
  for (uint32_t p = 0; p < g.n_pages; ++p) pages_[p] = {0, kNoPage, 0, 0};
}

unsigned Slabs::class_for(size_t total) const {
  unsigned lo = 1, hi = n_classes_;
  if (total > classes_[hi].chunk_size) return 0;
  while (lo < hi) {
    unsigned mid = (lo + hi) / 2;
    if (classes_[mid].chunk_size >= total) hi = mid; else lo = mid + 1;
  }
  return lo;
}

Item* Slabs::carve(ClassState& c) {
  if (c.carve_page == kNoPage || c.carve_next >= c.chunks_per_page) return nullptr;
  return chunk(c.carve_page, c.carve_next++, c);
}

bool Slabs::add_page(unsigned cls) {
  hdr_->page_lock.lock();
  uint32_t p = hdr_->pages_given.load(std::memory_order_relaxed);
  bool ok = p < hdr_->n_pages;
  if (ok) hdr_->pages_given.store(p + 1, std::memory_order_relaxed);
  hdr_->page_lock.unlock();
  if (ok) give_page(cls, p);
  return ok;
}

// Under the class lock: appends page p to the class and starts carving it.
void Slabs::give_page(unsigned cls, uint32_t p) {
  ClassState& c = classes_[cls];
  pages_[p] = {cls, kNoPage, 0, static_cast<uint32_t>(common::now_unix_ms())};
  if (c.last_page == kNoPage) {
    c.first_page = c.hand_page = p;
    c.hand_chunk = 0;
  } else {
    pages_[c.last_page].next = p;
  }
  c.last_page = p;
  c.carve_page = p;
  c.carve_next = 0;
  ++c.n_pages;
}

bool Slabs::move_page(uint32_t p, unsigned to, bool sparse_only, UnlinkFn unlink) {
  unsigned from = 0;
  if (p == kNoPage) {
    // The richest class gives; its CLOCK hand's page is the one least recently swept.
    uint32_t most = 0;
    for (unsigned i = 1; i <= n_classes_; ++i) {
      uint32_t n = classes_[i].n_pages;
      if (i != to && n > most) most = n, from = i;
    }
  } else {
    from = pages_[p].clsid;
  }
  if (from == 0 || from == to) return false;
  ClassState& f = classes_[from];
  f.lock.lock();
  if (p == kNoPage) p = f.hand_page;
  bool ok = p != kNoPage && pages_[p].clsid == from && (!sparse_only || sparse(p)) &&
            release_page(from, p, unlink);
  f.lock.unlock();
  if (!ok) return false;
  ClassState& t = classes_[to];
  t.lock.lock();
  give_page(to, p);
  t.lock.unlock();
  moved_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool Slabs::sparse(uint32_t p) const {
  const PageInfo& pi = pages_[p];
  if (pi.clsid == 0) return false;
  // A page its class got moments ago is about to fill: taking it would only bounce it back.
  uint32_t age_ms = static_cast<uint32_t>(common::now_unix_ms()) - pi.given_ms;
  if (age_ms < kSparseMinAgeMs) return false;
  // memcached's automove rule: only a class with more than 2.5 pages' worth of free chunks
  // gives, so its live items keep their room; and only a page at most half live.
  const ClassState& c = classes_[pi.clsid];
  return free_chunks(pi.clsid) * 2 > uint64_t{c.chunks_per_page} * 5 &&
         uint64_t{pi.used} * 2 <= c.chunks_per_page;
}

uint32_t Slabs::sparse_candidate(unsigned except) {
  for (auto& slot : candidates_) {
    uint32_t p = slot.exchange(kNoPage, std::memory_order_relaxed);
    if (p != kNoPage && pages_[p].clsid != except) return p;
  }
  uint64_t now = common::mono_ns();
  if (now - last_scan_ns_.load(std::memory_order_relaxed) < 10'000'000 ||
      scanning_.exchange(true, std::memory_order_acquire))
    return kNoPage;
  // Racy reads are fine here: move_page checks the winner again under its class lock.
  std::array<std::pair<double, uint32_t>, kCandidates> best;
  best.fill({2.0, kNoPage});
  uint32_t given = pages_given();
  for (uint32_t p = 0; p < given; ++p) {
    if (!sparse(p)) continue;
    double ratio = double(pages_[p].used) / classes_[pages_[p].clsid].chunks_per_page;
    auto worst = std::max_element(best.begin(), best.end());
    if (ratio < worst->first) *worst = {ratio, p};
  }
  std::sort(best.begin(), best.end());
  uint32_t found = kNoPage;
  for (int i = 0, j = 0; i < kCandidates; ++i) {
    uint32_t p = best[i].second;
    if (p == kNoPage) continue;
    if (found == kNoPage && pages_[p].clsid != except) found = p;
    else candidates_[j++].store(p, std::memory_order_relaxed);
  }
  last_scan_ns_.store(now, std::memory_order_relaxed);
  scanning_.store(false, std::memory_order_release);
  return found;
}

bool Slabs::release_page(unsigned from, uint32_t p, UnlinkFn unlink) {
  ClassState& c = classes_[from];
  uint32_t carved = p == c.carve_page ? c.carve_next : c.chunks_per_page;
  // Nothing of the page may be in another thread's hands: such a chunk is neither linked
  // nor free, and that thread will link or free it later.
  for (uint32_t i = 0; i < carved; ++i) {
    uint8_t st = chunk(p, i, c)->state.load(std::memory_order_acquire);
    if (!(st & (Item::kLinked | Item::kFree))) return false;
  }
  for (uint32_t i = 0; i < carved; ++i) {
    Item* it = chunk(p, i, c);
    uint8_t st = it->state.load(std::memory_order_acquire);
    // A writer may have unlinked it since the first pass (it will free it once we let go of
    // the class lock): the page must stay. What we evicted so far goes to the free list.
    if (!(st & (Item::kLinked | Item::kFree)) || ((st & Item::kLinked) && !unlink(it))) {
      for (uint32_t j = 0; j < i; ++j) {
        Item* e = chunk(p, j, c);
        if (e->state.load(std::memory_order_relaxed) & Item::kFree) continue;
        e->state.store(Item::kFree, std::memory_order_release);
        e->cas = c.free_head;
        c.free_head = arena_.offset_of(e);
        ++c.free_count;
        --pages_[p].used;
      }
      return false;
    }
  }
  // Drop the page's chunks from the free list.
  char* lo = reinterpret_cast<char*>(chunk(p, 0, c));
  char* hi = lo + hdr_->page_size;
  uint64_t* link = &c.free_head;
  while (*link != 0) {
    Item* it = arena_.at<Item>(*link);
    char* at = reinterpret_cast<char*>(it);
    if (at >= lo && at < hi) {
      *link = it->cas;
      --c.free_count;
    } else {
      link = &it->cas;
    }
  }
  // Unthread it from the class's page chain, hand and carving.
  uint32_t prev = kNoPage;
  for (uint32_t q = c.first_page; q != p; q = pages_[q].next) prev = q;
  uint32_t next = pages_[p].next;
  if (prev == kNoPage) c.first_page = next; else pages_[prev].next = next;
  if (c.last_page == p) c.last_page = prev;
  if (c.hand_page == p) {
    c.hand_page = next != kNoPage ? next : c.first_page;
    c.hand_chunk = 0;
  }
  if (c.carve_page == p) {
    c.carve_page = kNoPage;
    c.carve_next = c.chunks_per_page;
  }
  --c.n_pages;
  for (uint32_t i = 0; i < c.chunks_per_page; ++i) chunk(p, i, c)->state.store(0);
  pages_[p] = {0, kNoPage, 0, 0};
  return true;
}

Item* Slabs::take_own(unsigned cls) {
  ClassState& c = classes_[cls];
  Item* it = nullptr;
  if (c.free_head != 0) {
    it = arena_.at<Item>(c.free_head);
    c.free_head = it->cas;
    --c.free_count;
  } else if (!(it = carve(c)) && add_page(cls)) {
    it = carve(c);
  }
  return it;
}

Item* Slabs::alloc(unsigned cls, UnlinkFn unlink) {
  ClassState& c = classes_[cls];
  // A chunk leaves the free list or the page space already marked in flight, under the same
  // lock hold, so a page move never mistakes it for a free chunk.
  auto claim = [&](Item* it) {
    it->state.store(0, std::memory_order_relaxed);
    it->clsid = static_cast<uint8_t>(cls);
  };
  for (int attempt = 0; attempt < 4; ++attempt) {
    c.lock.lock();
    Item* it = take_own(cls);
    if (it) {
      claim(it);
      ++pages_[page_of(it)].used;
    }
    c.lock.unlock();
    if (it) return it;
    // Another class's nearly empty page costs fewer evictions than our CLOCK hand.
    uint32_t p = sparse_candidate(cls);
    if (p != kNoPage && move_page(p, cls, true, unlink)) continue;
    c.lock.lock();
    it = evict(c, unlink);  // reused in place: it stays counted in its page
    if (it) claim(it);
    c.lock.unlock();
    if (it) return it;
    // Nothing to evict (no page yet, or all in flight): take the richest class's page.
    if (!move_page(kNoPage, cls, false, unlink)) break;
  }
  return nullptr;
}

void Slabs::free(Item* it) {
  ClassState& c = classes_[it->clsid];
  c.lock.lock();
  it->state.store(Item::kFree, std::memory_order_release);
  --pages_[page_of(it)].used;
  it->cas = c.free_head;
  c.free_head = arena_.offset_of(it);
  ++c.free_count;
  c.lock.unlock();
}

// Walks the class's chunks from the hand: clears reference bits, and takes the first item
// without one that the caller manages to unlink. Bounded to two sweeps of the class.
Item* Slabs::evict(ClassState& c, UnlinkFn unlink) {
  if (c.hand_page == kNoPage) return nullptr;
  uint64_t budget = 2ull * c.n_pages * c.chunks_per_page + 1;
  for (uint64_t i = 0; i < budget; ++i) {
    uint32_t page = c.hand_page, idx = c.hand_chunk;
    if (++c.hand_chunk >= c.chunks_per_page) {
      c.hand_chunk = 0;
      uint32_t next = pages_[c.hand_page].next;
      c.hand_page = next == kNoPage ? c.first_page : next;
    }
    if (page == c.carve_page && idx >= c.carve_next) continue;  // never handed out
    Item* it = chunk(page, idx, c);
    uint8_t st = it->state.load(std::memory_order_acquire);
    if (!(st & Item::kLinked)) continue;
    if (st & Item::kAccessed) {
      it->state.fetch_and(static_cast<uint8_t>(~Item::kAccessed), std::memory_order_relaxed);
      continue;
    }
    if (unlink(it)) return it;
  }
  return nullptr;
}

const Item* Slabs::hand_item(unsigned cls) const {
  const ClassState& c = classes_[cls];
  if (c.hand_page == kNoPage) return nullptr;
  if (c.hand_page == c.carve_page && c.hand_chunk >= c.carve_next) return nullptr;
  const Item* it = chunk(c.hand_page, c.hand_chunk, c);
  return (it->state.load(std::memory_order_relaxed) & Item::kLinked) ? it : nullptr;
}

uint64_t Slabs::free_chunks(unsigned cls) const {
  const ClassState& c = classes_[cls];
  uint64_t uncarved = c.carve_page == kNoPage ? 0 : c.chunks_per_page - c.carve_next;
  return c.free_count + uncarved;
}

void Slabs::break_stale_locks() {
  for (unsigned i = 1; i <= n_classes_; ++i) classes_[i].lock.word.store(0);
  hdr_->page_lock.word.store(0);
}

}  // namespace cachet::store
