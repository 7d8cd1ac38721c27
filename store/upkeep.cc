// Upkeep's sampling, sweeps, transient reaper, crash repair and index growth (the page mover
// is in upkeep_move.cc).
#include "store/upkeep.hh"

#include <algorithm>
#include <bit>

#include "store/counters.hh"

namespace cachet::store {

void SweepTally::add(const SweepTally& o) {
  checked += o.checked;
  reclaimed += o.reclaimed;
  no_ttl += o.no_ttl;
  for (unsigned i = 0; i < kTtlBins; ++i) ttl[i] += o.ttl[i];
}

unsigned SweepTally::bin(uint32_t remaining) {
  const unsigned b = remaining < 2 ? 0 : static_cast<unsigned>(std::bit_width(remaining)) - 1;
  return std::min(b, kTtlBins - 1);
}

uint32_t Upkeep::victim_age(unsigned cls, uint32_t now) const {
  // Racy reads (no class lock): a sample for the rebalancer. The walk stays within the page
  // table, and every item it reads is a plain header in the arena.
  constexpr unsigned kProbe = 256;
  const Slabs& sl = s_.slabs_;
  const ClassState& c = sl.cls(cls);
  uint32_t p = c.hand_page, idx = c.hand_chunk;
  uint32_t oldest = 0;
  bool any = false;
  for (unsigned i = 0; i < kProbe && p < sl.n_pages(); ++i) {
    const PageInfo& pi = sl.page(p);
    if (pi.clsid != cls) break;
    if (idx < pi.carved && idx < c.chunks_per_page && !(pi.flags & PageInfo::kDraining)) {
      const Item* it = sl.chunk_at(p, idx);
      const uint8_t st = it->state.load(std::memory_order_relaxed);
      if (st & Item::kLinked) {
        const uint32_t age = now > it->atime ? now - it->atime : 0;
        if (!(st & Item::kAccessed)) return std::max<uint32_t>(age, 1);
        oldest = std::max(oldest, age);
        any = true;
      }
    }
    if (++idx >= c.chunks_per_page) {
      idx = 0;
      p = pi.next == kNoPage ? c.first_page : pi.next;
    }
  }
  return any ? std::max<uint32_t>(oldest, 1) : 0;
}

std::vector<ClassSample> Upkeep::sample_classes(uint32_t now, bool ages) const {
  std::vector<ClassSample> out;
  const Slabs& sl = s_.slabs_;
  const uint32_t moving = s_.hdr_->move_page.load(std::memory_order_relaxed);
  const unsigned moving_cls = moving != kNoPage ? sl.page(moving).clsid : 0;
  for (unsigned i = 1; i <= sl.n_classes(); ++i) {
    const ClassState& c = sl.cls(i);
    if (c.n_pages == 0) continue;
    ClassSample cs{};
    cs.id = i;
    cs.pages = c.n_pages;
    cs.chunks_per_page = c.chunks_per_page;
    cs.items = c.number.load(std::memory_order_relaxed);
    cs.used_chunks = uint64_t{c.n_pages} * c.chunks_per_page - sl.free_chunks(i);
    for (const auto& w : s_.counters_) {
      cs.evicted += w->cls[i].evicted.get();
      cs.outofmemory += w->cls[i].outofmemory.get();
      cs.ttl_sets += w->cls[i].ttl_sets.get();
    }
    cs.victim_age = ages ? victim_age(i, now) : 0;
    cs.draining = moving_cls == i;
    out.push_back(cs);
  }
  return out;
}

std::vector<uint32_t> Upkeep::pages_of(unsigned cls) const {
  std::vector<uint32_t> out;
  const Slabs& sl = s_.slabs_;
  const uint32_t given = sl.pages_given();
  for (uint32_t p = 0; p < given; ++p)
    if (sl.page(p).clsid == cls) out.push_back(p);
  return out;
}

bool Upkeep::reap_if_dead(Worker& w, uint64_t off, uint32_t now, bool transient) {
  Item* it = s_.item_at(off);
  // The key as it reads now: if the chunk is not the linked item it was, the hash finds no
  // slot holding this offset and nothing happens.
  const uint64_t h = Store::hash({it->key(), it->nkey});
  const Store::Death d = s_.unlink_if_dead(h, off, now);
  if (d == Store::Death::alive) return false;
  auto& c = s_.ctr(w);
  (transient ? c.transient_reaped : c.crawler_reclaimed).add();
  if (d == Store::Death::expired) s_.count_eviction(w, it, now, true);
  s_.slabs_.free(it);
  return true;
}

void Upkeep::sweep_page(Worker& w, uint32_t p, uint32_t now, SweepTally& t, bool rewheel) {
  const Slabs& sl = s_.slabs_;
  const PageInfo& pi = sl.page(p);
  const unsigned cls = pi.clsid;
  if (cls == 0 || cls > sl.n_classes()) return;
  const uint32_t carved = std::min(pi.carved, sl.cls(cls).chunks_per_page);
  uint64_t checked = 0;
  for (uint32_t i = 0; i < carved; ++i) {
    Item* it = sl.chunk_at(p, i);
    if (!(it->state.load(std::memory_order_acquire) & Item::kLinked)) continue;
    ++checked;
    const uint32_t exptime = it->exptime;
    const Store::Death d = s_.death(it, now);
    if (d != Store::Death::alive) {
      // Expired in a second the transient reaper has not taken yet: left to it (it frees the
      // item within a second when the item is on the wheel; the next sweep does otherwise), so
      // that each item is reclaimed, and counted, where it belongs.
      if (d == Store::Death::expired && exptime > s_.wheel_.reaped_until()) continue;
      if (reap_if_dead(w, s_.off_of(it), now, false)) ++t.reclaimed;
      continue;
    }
    if (exptime == 0) {
      ++t.no_ttl;
      continue;
    }
    ++t.ttl[SweepTally::bin(exptime > now ? exptime - now : 0)];
    if (rewheel) s_.note_exptime(w, s_.off_of(it), exptime, now);
  }
  t.checked += checked;
  s_.ctr(w).crawler_items_checked.add(checked);
}

ReapTally Upkeep::reap_transient(Worker& w, uint32_t now, uint32_t max_seconds) {
  ReapTally r;
  TransientWheel& wheel = s_.wheel_;
  const uint32_t last = now - 1;  // a second is taken once it has wholly passed
  uint32_t done = wheel.reaped_until();
  if (done >= last) return r;
  // After a long pause one turn of the wheel covers every list.
  if (last - done > kWheelSeconds) done = last - kWheelSeconds;
  for (uint32_t s = done + 1; s <= last && r.seconds < max_seconds; ++s) {
    wheel.take(s, [&](uint64_t off) {
      ++r.entries;
      if (reap_if_dead(w, off, now, true)) ++r.reaped;
    });
    ++r.seconds;
  }
  return r;
}

uint32_t Upkeep::transient_backlog(uint32_t now) const {
  const uint32_t done = s_.wheel_.reaped_until();
  return now - 1 > done ? now - 1 - done : 0;
}

bool Upkeep::repair_pending() const {
  return s_.hdr_->repair_pending.load(std::memory_order_acquire) != 0;
}

uint32_t Upkeep::repair_page(Worker& w, uint32_t p, uint32_t now, SweepTally& t) {
  const uint32_t freed = s_.slabs_.repair_page(p, s_.epoch_);
  if (freed) s_.ctr(w).crash_orphans_freed.add(freed);
  sweep_page(w, p, now, t, true);
  return freed;
}

void Upkeep::repair_done() { s_.hdr_->repair_pending.store(0, std::memory_order_release); }

uint32_t Upkeep::grow_index(uint32_t max_splits) { return s_.index_.grow_ahead(max_splits); }

}  // namespace cachet::store
