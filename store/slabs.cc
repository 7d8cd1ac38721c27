// Slab allocation and CLOCK eviction. Lock order: a class lock may be held while taking a
// bucket lock (eviction), never the other way round; two class locks are never held together.
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
    c.first_page = c.last_page = c.carve_page = c.hand_page = c.free_pages = kNoPage;
  }
  for (uint32_t p = 0; p < g.n_pages; ++p) {
    pages_[p] = PageInfo{};
    pages_[p].next = pages_[p].free_next = pages_[p].free_prev = pages_[p].carve_next = kNoPage;
  }
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

void Slabs::list_page(ClassState& c, uint32_t p) {
  PageInfo& pi = pages_[p];
  pi.free_prev = kNoPage;
  pi.free_next = c.free_pages;
  if (c.free_pages != kNoPage) pages_[c.free_pages].free_prev = p;
  c.free_pages = p;
  pi.flags |= PageInfo::kListed;
}

void Slabs::unlist_page(ClassState& c, uint32_t p) {
  PageInfo& pi = pages_[p];
  if (!(pi.flags & PageInfo::kListed)) return;
  if (pi.free_prev == kNoPage) c.free_pages = pi.free_next;
  else pages_[pi.free_prev].free_next = pi.free_next;
  if (pi.free_next != kNoPage) pages_[pi.free_next].free_prev = pi.free_prev;
  pi.free_next = pi.free_prev = kNoPage;
  pi.flags &= ~PageInfo::kListed;
}

void Slabs::push_free(ClassState& c, uint32_t p, Item* it) {
  PageInfo& pi = pages_[p];
  it->state.store(Item::kFree, std::memory_order_release);
  it->cas = pi.free_head;
  pi.free_head = index_in_page(it, c) + 1;
  ++pi.free_count;
  ++c.free_count;
  --pi.used;
  if (!(pi.flags & (PageInfo::kListed | PageInfo::kDraining))) list_page(c, p);
}

Item* Slabs::pop_free(ClassState& c, uint32_t p) {
  PageInfo& pi = pages_[p];
  Item* it = chunk(p, pi.free_head - 1, c);
  pi.free_head = static_cast<uint32_t>(it->cas);
  --pi.free_count;
  --c.free_count;
  ++pi.used;
  if (pi.free_count == 0) unlist_page(c, p);
  return it;
}

Item* Slabs::carve(ClassState& c) {
  while (c.carve_page != kNoPage) {
    PageInfo& pi = pages_[c.carve_page];
    if (pi.carved < c.chunks_per_page) {
      ++pi.used;
      return chunk(c.carve_page, pi.carved++, c);
    }
    c.carve_page = pi.carve_next;
    pi.carve_next = kNoPage;
  }
  return nullptr;
}

void Slabs::uncarve(ClassState& c, uint32_t p) {
  uint32_t* link = &c.carve_page;
  while (*link != kNoPage && *link != p) link = &pages_[*link].carve_next;
  if (*link == p) *link = pages_[p].carve_next;
  pages_[p].carve_next = kNoPage;
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

// Under the class lock: appends page p to the class; it is carved before any page that was
// waiting to be.
void Slabs::give_page(unsigned cls, uint32_t p) {
  ClassState& c = classes_[cls];
  PageInfo& pi = pages_[p];
  pi = PageInfo{};
  pi.clsid = cls;
  pi.next = pi.free_next = pi.free_prev = kNoPage;
  pi.given_ms = static_cast<uint32_t>(common::now_unix_ms());
  if (c.last_page == kNoPage) {
    c.first_page = c.hand_page = p;
    c.hand_chunk = 0;
  } else {
    pages_[c.last_page].next = p;
  }
  c.last_page = p;
  pi.carve_next = c.carve_page;
  c.carve_page = p;
  ++c.n_pages;
}

void Slabs::unthread_page(ClassState& c, uint32_t p) {
  PageInfo& pi = pages_[p];
  unlist_page(c, p);
  c.free_count -= pi.free_count;
  uint32_t prev = kNoPage;
  for (uint32_t q = c.first_page; q != p; q = pages_[q].next) prev = q;
  const uint32_t next = pi.next;
  if (prev == kNoPage) c.first_page = next; else pages_[prev].next = next;
  if (c.last_page == p) c.last_page = prev;
  if (c.hand_page == p) {
    c.hand_page = next != kNoPage ? next : c.first_page;
    c.hand_chunk = 0;
  }
  uncarve(c, p);
  --c.n_pages;
  pi = PageInfo{};
  pi.next = pi.free_next = pi.free_prev = pi.carve_next = kNoPage;
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
  moved_inline_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool Slabs::sparse(uint32_t p) const {
  const PageInfo& pi = pages_[p];
  if (pi.clsid == 0 || (pi.flags & PageInfo::kDraining)) return false;
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
  PageInfo& pi = pages_[p];
  if (pi.flags & PageInfo::kDraining) return false;  // the page mover has it
  const uint32_t carved = pi.carved;
  // Nothing of the page may be in another thread's hands: such a chunk is neither linked
  // nor free, and that thread will link or free it later.
  for (uint32_t i = 0; i < carved; ++i) {
    uint8_t st = chunk(p, i, c)->state.load(std::memory_order_acquire);
    if (!(st & (Item::kLinked | Item::kFree))) return false;
  }
  for (uint32_t i = 0; i < carved; ++i) {
    Item* it = chunk(p, i, c);
    uint8_t st = it->state.load(std::memory_order_acquire);
    if (st & Item::kFree) continue;
    // A writer may have unlinked it since the first pass (it will free it once we let go of
    // the class lock): the page must stay. What we evicted so far is free in the page.
    if (!(st & Item::kLinked) || !unlink(it)) return false;
    push_free(c, p, it);
  }
  unthread_page(c, p);
  return true;
}

bool Slabs::free_head_ok(unsigned cls, uint32_t p) const {
  if (p >= hdr_->n_pages) return false;
  const PageInfo& pi = pages_[p];
  const ClassState& c = classes_[cls];
  return pi.clsid == cls && (pi.flags & PageInfo::kListed) && pi.free_count > 0 &&
         pi.free_head >= 1 && pi.free_head <= std::min(pi.carved, c.chunks_per_page) &&
         chunk(p, pi.free_head - 1, c)->state.load(std::memory_order_relaxed) == Item::kFree;
}

Item* Slabs::take_own(unsigned cls, bool fresh_page) {
  ClassState& c = classes_[cls];
  if (c.free_pages != kNoPage && !free_head_ok(cls, c.free_pages)) {
    c.free_pages = kNoPage;  // damaged: the free chunks still listed are lost
    c.free_count = 0;
  }
  if (c.free_pages != kNoPage) return pop_free(c, c.free_pages);
  Item* it = carve(c);
  if (!it && fresh_page && add_page(cls)) it = carve(c);
  return it;
}

// Under the class lock: a chunk leaving the free list or the page space is marked in flight
// in the same hold, so a page move never mistakes it for a free chunk; its epoch tells a crash
// scan that it belongs to a live process.
void Slabs::claim(Item* it, unsigned cls) {
  it->epoch = hdr_->epoch.load(std::memory_order_relaxed);
  it->state.store(0, std::memory_order_release);
  it->clsid = static_cast<uint8_t>(cls);
}

Item* Slabs::take_free(unsigned cls) {
  ClassState& c = classes_[cls];
  c.lock.lock();
  Item* it = take_own(cls, false);
  if (it) claim(it, cls);
  c.lock.unlock();
  return it;
}

Item* Slabs::alloc(unsigned cls, UnlinkFn unlink, bool may_move) {
  ClassState& c = classes_[cls];
  for (int attempt = 0; attempt < 4; ++attempt) {
    c.lock.lock();
    Item* it = take_own(cls, may_move);
    if (it) claim(it, cls);
    c.lock.unlock();
    if (it) return it;
    // Another class's nearly empty page costs fewer evictions than our CLOCK hand.
    uint32_t p = may_move ? sparse_candidate(cls) : kNoPage;
    if (p != kNoPage && move_page(p, cls, true, unlink)) continue;
    c.lock.lock();
    it = evict(c, unlink);  // reused in place: it stays counted in its page
    if (it) claim(it, cls);
    c.lock.unlock();
    if (it) return it;
    // Nothing to evict (no page yet, or all in flight): take the richest class's page.
    if (!may_move || !move_page(kNoPage, cls, false, unlink)) break;
  }
  return nullptr;
}

void Slabs::free(Item* it) {
  ClassState& c = classes_[it->clsid];
  c.lock.lock();
  push_free(c, page_of(it), it);
  c.lock.unlock();
}

// Walks the class's chunks from the hand: clears reference bits, and takes the first item
// without one that the caller manages to unlink. Skips a page being drained. Bounded to two
// sweeps of the class.
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
    const PageInfo& pi = pages_[page];
    if (idx >= pi.carved || (pi.flags & PageInfo::kDraining)) continue;
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

bool Slabs::begin_drain(uint32_t p) {
  const unsigned from = pages_[p].clsid;
  if (from == 0) return false;
  ClassState& c = classes_[from];
  c.lock.lock();
  PageInfo& pi = pages_[p];
  const bool ok = pi.clsid == from && !(pi.flags & PageInfo::kDraining);
  if (ok) {
    unlist_page(c, p);
    uncarve(c, p);
    pi.flags |= PageInfo::kDraining;
    hdr_->move_page.store(p, std::memory_order_relaxed);
  }
  c.lock.unlock();
  return ok;
}

bool Slabs::finish_drain(uint32_t p, unsigned to) {
  const unsigned from = pages_[p].clsid;
  if (from == 0 || from == to) return false;
  ClassState& f = classes_[from];
  f.lock.lock();
  PageInfo& pi = pages_[p];
  const bool empty = pi.clsid == from && (pi.flags & PageInfo::kDraining) && pi.used == 0;
  if (empty) unthread_page(f, p);
  f.lock.unlock();
  if (!empty) return false;
  ClassState& t = classes_[to];
  t.lock.lock();
  give_page(to, p);
  t.lock.unlock();
  hdr_->move_page.store(kNoPage, std::memory_order_relaxed);
  moved_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Slabs::cancel_drain(uint32_t p) {
  const unsigned from = pages_[p].clsid;
  if (from != 0) {
    ClassState& c = classes_[from];
    c.lock.lock();
    PageInfo& pi = pages_[p];
    if (pi.clsid == from && (pi.flags & PageInfo::kDraining)) {
      pi.flags &= ~PageInfo::kDraining;
      if (pi.free_count > 0) list_page(c, p);
      if (pi.carved < c.chunks_per_page) {  // back to carving, first
        pi.carve_next = c.carve_page;
        c.carve_page = p;
      }
    }
    c.lock.unlock();
  }
  hdr_->move_page.store(kNoPage, std::memory_order_relaxed);
}

uint32_t Slabs::repair_page(uint32_t p, uint32_t epoch) {
  const unsigned cls = pages_[p].clsid;
  if (cls == 0) return 0;
  ClassState& c = classes_[cls];
  c.lock.lock();
  PageInfo& pi = pages_[p];
  uint32_t orphans = 0;
  if (pi.clsid == cls) {
    const uint32_t carved = std::min(pi.carved, c.chunks_per_page);
    const uint32_t old_free = pi.free_count;
    uint32_t head = 0, nfree = 0;
    for (uint32_t i = carved; i-- > 0;) {
      Item* it = chunk(p, i, c);
      const uint8_t st = it->state.load(std::memory_order_acquire);
      const bool orphan = !(st & (Item::kLinked | Item::kFree)) && it->epoch != epoch;
      if (!(st & Item::kFree) && !orphan) continue;
      if (orphan) {
        it->state.store(Item::kFree, std::memory_order_release);
        ++orphans;
      }
      it->cas = head;
      head = i + 1;
      ++nfree;
    }
    pi.carved = carved;
    pi.free_head = head;
    pi.free_count = nfree;
    pi.used = carved - nfree;
    c.free_count = c.free_count + nfree - old_free;
    if (nfree > 0 && !(pi.flags & (PageInfo::kListed | PageInfo::kDraining))) list_page(c, p);
    if (nfree == 0) unlist_page(c, p);
  }
  c.lock.unlock();
  return orphans;
}

void Slabs::relist_free_pages() {
  for (unsigned i = 1; i <= n_classes_; ++i) {
    classes_[i].free_pages = kNoPage;
    classes_[i].free_count = 0;
  }
  const uint32_t given = pages_given();
  for (uint32_t p = 0; p < given; ++p) {
    PageInfo& pi = pages_[p];
    pi.flags &= ~PageInfo::kListed;
    if (pi.clsid == 0 || pi.clsid > n_classes_) continue;
    ClassState& c = classes_[pi.clsid];
    c.free_count += pi.free_count;
    if (pi.free_count > 0 && !(pi.flags & PageInfo::kDraining)) list_page(c, p);
  }
}

const Item* Slabs::hand_item(unsigned cls) const {
  const ClassState& c = classes_[cls];
  if (c.hand_page == kNoPage || c.hand_chunk >= pages_[c.hand_page].carved) return nullptr;
  const Item* it = chunk(c.hand_page, c.hand_chunk, c);
  return (it->state.load(std::memory_order_relaxed) & Item::kLinked) ? it : nullptr;
}

uint64_t Slabs::free_chunks(unsigned cls) const {
  const ClassState& c = classes_[cls];
  uint64_t uncarved = 0;
  for (uint32_t p = c.carve_page; p != kNoPage; p = pages_[p].carve_next)
    uncarved += c.chunks_per_page - pages_[p].carved;
  return c.free_count + uncarved;
}

void Slabs::break_stale_locks() {
  for (unsigned i = 1; i <= n_classes_; ++i) classes_[i].lock.word.store(0);
  hdr_->page_lock.word.store(0);
}

}  // namespace cachet::store
