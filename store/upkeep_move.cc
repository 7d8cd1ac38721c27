// The page mover: empties one page of a class step by step and gives it to another class.
//
// Protocol. begin: under the donor's class lock the page is marked draining and leaves the
// class's free space (its free chunks and unused space are no longer handed out) and the CLOCK
// hand's reach. Steps: each chunk is looked at once per pass; a live item is copied into a free
// chunk of its class (on another page) and its index slot repointed under its bucket lock, the
// way a write links a new item, so a lock-free reader either validates against the old copy or
// retries and finds the new one; without a free chunk, the CLOCK hand makes one (the class's
// least recently used item is evicted), and only when it cannot is the item itself evicted. Its old chunk is freed into
// the draining page. A chunk in a writer's hands (taken before the drain, not yet linked or
// freed) is looked at again on the next pass. finish: once no chunk of the page is used, it
// leaves the donor under the donor's lock and joins the receiver under the receiver's.
#include <cstddef>
#include <cstring>

#include "store/counters.hh"
#include "store/upkeep.hh"

namespace cachet::store {

bool Upkeep::begin_move(unsigned from, unsigned to, PageMove* m) {
  Slabs& sl = s_.slabs_;
  if (from == 0 || from > sl.n_classes()) return false;
  // The page the CLOCK hand reaches next: it holds the items that have gone longest without
  // a look. Not the hand's own page: the chunks the hand just freed there are refilled by the
  // newest writes (racy reads: begin_move_page checks the page under the lock).
  const ClassState& c = sl.cls(from);
  uint32_t p = c.hand_page;
  if (p == kNoPage || p >= sl.n_pages() || sl.page(p).clsid != from) return false;
  if (c.n_pages >= 2) {
    const uint32_t next = sl.page(p).next == kNoPage ? c.first_page : sl.page(p).next;
    if (next < sl.n_pages() && sl.page(next).clsid == from) p = next;
  }
  return begin_move_page(p, to, m);
}

bool Upkeep::begin_move_page(uint32_t p, unsigned to, PageMove* m) {
  Slabs& sl = s_.slabs_;
  if (p >= sl.pages_given() || to == 0 || to > sl.n_classes()) return false;
  const unsigned from = sl.page(p).clsid;
  if (from == 0 || from == to || !sl.begin_drain(p)) return false;
  if (sl.page(p).clsid != from) {  // moved between our read and the drain
    sl.cancel_drain(p);
    return false;
  }
  *m = PageMove{};
  m->page = p;
  m->from = from;
  m->to = to;
  return true;
}

void Upkeep::cancel_move(PageMove& m) {
  if (m.page != kNoPage) s_.slabs_.cancel_drain(m.page);
  m.page = kNoPage;
}

void Upkeep::relocate(Worker& w, Item* it, PageMove& m, uint32_t now) {
  Slabs& sl = s_.slabs_;
  Index& index = s_.index_;
  const uint64_t off = s_.off_of(it);
  const uint64_t h = Store::hash({it->key(), it->nkey});
  // The destination is taken before the bucket lock (class lock, then none), as writes do.
  // Without a free chunk, room is made by the CLOCK hand (which never reaches a draining
  // page): the class gives up the item the hand picks, its least recently used as far as CLOCK
  // knows, rather than a recent item that happened to share the moving page. Only when the
  // hand finds nothing (the class has no other page) is the item itself evicted.
  Item* dest = sl.take_free(m.from);
  if (!dest) dest = s_.alloc(w, m.from, now, false);
  Index::Guard g = index.lock(h);
  std::atomic<uint64_t>* slot = index.slot_of(g, off);
  if (!slot) {  // unlinked meanwhile: its chunk comes back free (or in flight) by itself
    g.unlock();
    if (dest) sl.free(dest);
    return;
  }
  if (s_.death(it, now) != Store::Death::alive) {
    slot->store(0, std::memory_order_release);
    s_.unlink(it);
    g.unlock();
    if (dest) sl.free(dest);
    if (it->exptime != 0 && it->exptime <= now) s_.count_eviction(w, it, now, true);
    s_.ctr(w).crawler_reclaimed.add();
    sl.free(it);
    ++m.reclaimed;
    return;
  }
  auto& c = s_.ctr(w);
  if (!dest) {
    slot->store(0, std::memory_order_release);
    s_.unlink(it);
    g.unlock();
    sl.free(it);
    c.slab_reassign_evictions_nomem.add();
    ++m.evicted;
    return;
  }
  // A whole copy (header, key, value, ext; checksum and crash epoch with it), then the state,
  // then the slot. Counts of the class do not change: the item stays in it.
  const size_t total = it->total();
  constexpr size_t kState = offsetof(Item, state);
  char* to = reinterpret_cast<char*>(dest);
  const char* from = reinterpret_cast<const char*>(it);
  std::memcpy(to + sizeof(uint64_t), from + sizeof(uint64_t), kState - sizeof(uint64_t));
  std::memcpy(to + kState + 1, from + kState + 1, total - kState - 1);
  dest->cas = it->cas;
  const uint8_t st = it->state.load(std::memory_order_relaxed);
  dest->state.store(st & (Item::kLinked | Item::kAccessed | Item::kFetched | Item::kHidden |
                          Item::kExt),
                    std::memory_order_release);
  slot->store(make_slot(Index::tag_of(h), s_.off_of(dest)), std::memory_order_release);
  it->epoch = s_.epoch_;  // as unlink(): before the bit goes
  it->state.fetch_and(static_cast<uint8_t>(~Item::kLinked), std::memory_order_release);
  const uint32_t exptime = dest->exptime;
  const uint64_t moved_to = s_.off_of(dest);
  g.unlock();
  sl.free(it);
  c.slab_reassign_rescues.add();
  ++m.rescued;
  s_.note_exptime(w, moved_to, exptime, now);  // its wheel entry named the old chunk
}

MoveResult Upkeep::move_step(Worker& w, PageMove& m, uint32_t max_chunks, uint32_t now) {
  Slabs& sl = s_.slabs_;
  if (m.page == kNoPage) return MoveResult::failed;
  const PageInfo& pi = sl.page(m.page);
  if (pi.clsid != m.from || !(pi.flags & PageInfo::kDraining)) {
    m.page = kNoPage;
    return MoveResult::failed;
  }
  const uint32_t carved = pi.carved;  // no carving while it drains
  const uint32_t end = std::min<uint64_t>(carved, uint64_t{m.cursor} + max_chunks);
  for (; m.cursor < end; ++m.cursor) {
    Item* it = sl.chunk_at(m.page, m.cursor);
    const uint8_t st = it->state.load(std::memory_order_acquire);
    if (st & Item::kFree) continue;
    if (!(st & Item::kLinked)) {
      ++m.busy;
      continue;
    }
    relocate(w, it, m, now);
  }
  if (m.cursor < carved) return MoveResult::working;
  if (sl.finish_drain(m.page, m.to)) {
    m.page = kNoPage;
    return MoveResult::done;
  }
  // Chunks were in writers' hands (or were freed under us into the page): another pass.
  s_.ctr(w).slab_reassign_busy_items.add(m.busy);
  m.busy = 0;
  m.cursor = 0;
  if (++m.passes > kMaxBusyPasses) {
    cancel_move(m);
    return MoveResult::failed;
  }
  return MoveResult::waiting;
}

}  // namespace cachet::store
