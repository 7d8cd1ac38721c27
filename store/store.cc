// Store operations: lock-free reads validated by bucket versions, writes under one bucket lock,
// memcached's semantics for every storage command, expiry and flush.
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "common/clock.hh"
#include "common/hash.hh"
#include "common/log.hh"
#include "store/store_impl.hh"

namespace cachet::store {
uint32_t Store::absolute_exptime(int64_t exptime, uint32_t now) {
  // memcached's realtime(): 0 never, negative now, <= 30 days relative, else absolute.
  if (exptime == 0) return 0;
  if (exptime < 0) return 1;
  if (exptime > kRelativeExptimeMax) {
    if (exptime <= now) return 1;
    return exptime > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(exptime);
  }
  return now + static_cast<uint32_t>(exptime);
}

std::unique_ptr<Store> Store::open(const Options& opts, std::string* error) {
  Geometry g{};
  if (!Geometry::compute(opts.memory_mb << 20, opts.item_size_max, opts.chunk_min,
                         opts.growth_factor, &g, error))
    return nullptr;
  if (opts.workers == 0) {
    *error = "the store needs at least one worker";
    return nullptr;
  }
  auto arena = Arena::open(opts.shm, g, opts.chunk_min, opts.item_size_max, opts.growth_factor,
                           opts.discard_incompatible, error);
  if (!arena) return nullptr;
  return std::make_unique<StoreImpl>(opts, g, std::move(arena));
}

bool Store::probe(const Options& opts, std::string* error) {
  Geometry g{};
  if (!Geometry::compute(opts.memory_mb << 20, opts.item_size_max, opts.chunk_min,
                         opts.growth_factor, &g, error))
    return false;
  return Arena::probe(opts.shm, g, opts.chunk_min, opts.item_size_max, opts.growth_factor, error);
}

StoreImpl::StoreImpl(const Options& opts, const Geometry& g, std::unique_ptr<Arena> arena)
    : opts_(opts),
      geo_(g),
      arena_(std::move(arena)),
      hdr_(arena_->header()),
      slabs_(*arena_, g, arena_->created()),
      index_(*arena_, g, arena_->created()) {
  if (arena_->created()) {
    hdr_->layout_version = kLayoutVersion;
    hdr_->header_bytes = kHeaderBytes;
    hdr_->arena_bytes = g.arena_bytes;
    hdr_->page_size = g.page_size;
    hdr_->n_pages = g.n_pages;
    hdr_->n_classes = g.n_classes;
    hdr_->chunk_min = opts.chunk_min;
    hdr_->item_size_max = opts.item_size_max;
    hdr_->growth_factor = opts.growth_factor;
    hdr_->off_classes = g.off_classes;
    hdr_->off_pages = g.off_pages;
    hdr_->off_index = g.off_index;
    hdr_->off_buckets = g.off_buckets;
    hdr_->off_overflow = g.off_overflow;
    hdr_->off_items = g.off_items;
    hdr_->created_unix = common::now_unix();
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(hdr_->magic, kMagic, sizeof(kMagic));
  } else if (hdr_->attached.load() != 0) {
    // The last process that used this arena died attached: its locks may still be held, and
    // an item it was changing in place may be torn. Items are checked against their checksum
    // on first use in the new epoch (never a walk over all items here).
    uint32_t epoch = hdr_->epoch.fetch_add(1) + 1;
    common::log::warn("arena {} was not detached cleanly; clearing stale locks, items are "
                      "verified on first use (epoch {})", arena_->path(), epoch);
    index_.break_stale_locks();
    slabs_.break_stale_locks();
  }
  epoch_ = hdr_->epoch.load();
  hdr_->attached.store(1);
  for (unsigned i = 0; i < opts.workers; ++i) {
    workers_.push_back(Worker(i));
    counters_.push_back(std::make_unique<WorkerCounters>());
  }
}

StoreImpl::~StoreImpl() {
  if (arena_->locked()) hdr_->attached.store(0);
}

void StoreImpl::detach() {
  hdr_->attached.store(0);
  arena_->unlock();
}

StoreImpl::Death StoreImpl::death(const Item* it, uint32_t now) const {
  if (it->exptime != 0 && it->exptime <= now) return Death::expired;
  uint32_t oldest_live = hdr_->oldest_live.load(std::memory_order_relaxed);
  if (oldest_live != 0 && oldest_live <= now) {
    uint64_t oldest_cas = hdr_->oldest_cas.load(std::memory_order_relaxed);
    if (it->time <= oldest_live || (oldest_cas != 0 && it->cas < oldest_cas))
      return Death::flushed;
  }
  return Death::alive;
}

bool StoreImpl::intact(Item* it) {
  if (it->epoch == epoch_) return true;
  if (item_checksum(it) != it->checksum) return false;
  it->epoch = epoch_;  // a hint, written racily: a second check is harmless
  return true;
}

bool StoreImpl::sane(const Item* it) const {
  unsigned cls = it->clsid;
  return cls >= 1 && cls <= slabs_.n_classes() && it->nbytes >= 2 &&
         it->total() <= slabs_.chunk_size(cls) &&
         off_of(it) + it->total() <= geo_.off_items + uint64_t{geo_.n_pages} * geo_.page_size;
}

void StoreImpl::note_fetch(Item* it, uint32_t now) {
  uint8_t st = it->state.load(std::memory_order_relaxed);
  constexpr uint8_t kBits = Item::kAccessed | Item::kFetched;
  if ((st & kBits) != kBits) it->state.fetch_or(kBits, std::memory_order_relaxed);
  if (now - it->atime >= 60) it->atime = now;  // memcached's ITEM_UPDATE_INTERVAL
}

StoreImpl::Lookup StoreImpl::find_live(Worker& w, std::string_view key, uint64_t h, uint32_t now,
                                       Index::Ticket* t, Item** found) {
  *t = index_.read_begin(h);
  uint64_t off = index_.find(t->bucket, Index::tag_of(h),
                             [&](uint64_t o) { return key_matches(item_at(o), key); });
  if (off == 0) return index_.read_valid(*t) ? Lookup::miss : Lookup::retry;
  Item* it = item_at(off);
  Death d = death(it, now);
  if (!sane(it) || d != Death::alive) {
    if (!index_.read_valid(*t)) return Lookup::retry;
    if (d == Death::alive) return Lookup::implausible;
    reap(w, h, off, d);
    return Lookup::miss;
  }
  if (!intact(it)) {  // torn by a crash: dropped, then a miss
    if (!index_.read_valid(*t)) return Lookup::retry;
    drop_torn(w, h, off);
    return Lookup::miss;
  }
  *found = it;
  return Lookup::found;
}

bool StoreImpl::get(Worker& w, std::string_view key, common::ByteBuf& out, ReadFn fn) {
  const uint64_t h = common::hash_key(key);
  const uint32_t now = common::now_unix();
  for (;;) {
    Index::Ticket t;
    Item* it = nullptr;
    Lookup r = find_live(w, key, h, now, &t, &it);
    if (r == Lookup::retry) continue;
    if (r != Lookup::found) return false;
    size_t mark = out.size();
    fn(ItemView{key, {it->value(), it->nbytes - 2}, it->flags, it->exptime, it->cas});
    if (!index_.read_valid(t)) {
      out.truncate(mark);
      continue;
    }
    note_fetch(it, now);
    ctr(w).cls[it->clsid].get_hits.add();
    return true;
  }
}

uint64_t StoreImpl::prefetch_bucket(std::string_view key) const {
  const uint64_t h = common::hash_key(key);
  __builtin_prefetch(index_.bucket_hint(h));
  return h;
}

void StoreImpl::prefetch_item(uint64_t h) const {
  const Bucket* b = index_.bucket_hint(h);
  const uint16_t tag = Index::tag_of(h);
  for (const auto& slot : b->slot) {
    uint64_t s = slot.load(std::memory_order_relaxed);
    if (s && slot_tag(s) == tag) {
      // Header, key and a small value: up to three lines, as chunks need not be line-aligned.
      const char* it = reinterpret_cast<const char*>(item_at(slot_offset(s)));
      __builtin_prefetch(it);
      __builtin_prefetch(it + 64);
      __builtin_prefetch(it + 127);
      return;
    }
  }
}

std::atomic<uint64_t>* StoreImpl::find_locked(Index::Guard& g, uint64_t hash,
                                              std::string_view key) {
  return index_.find_slot(g, Index::tag_of(hash),
                          [&](uint64_t o) { return key_matches(item_at(o), key); });
}

void StoreImpl::unlink(Item* it) {
  it->state.fetch_and(static_cast<uint8_t>(~Item::kLinked), std::memory_order_release);
  ClassState& c = slabs_.cls(it->clsid);
  c.number.fetch_sub(1, std::memory_order_relaxed);
  c.mem_requested.fetch_sub(it->total(), std::memory_order_relaxed);
  index_.on_unlink();
}

void StoreImpl::reap(Worker& w, uint64_t hash, uint64_t off, Death why) {
  Index::Guard g = index_.lock(hash);
  std::atomic<uint64_t>* slot = index_.slot_of(g, off);
  Item* it = item_at(off);
  if (!slot || death(it, common::now_unix()) == Death::alive) return;
  slot->store(0, std::memory_order_release);
  unlink(it);
  g.unlock();
  auto& c = ctr(w);
  (why == Death::expired ? c.get_expired : c.get_flushed).add();
  if (why == Death::expired) {
    c.cls[it->clsid].reclaimed.add();
    if (!(it->state.load() & Item::kFetched)) c.cls[it->clsid].expired_unfetched.add();
  }
  slabs_.free(it);
}

void StoreImpl::drop_torn(Worker& w, uint64_t hash, uint64_t off) {
  Index::Guard g = index_.lock(hash);
  std::atomic<uint64_t>* slot = index_.slot_of(g, off);
  Item* it = item_at(off);
  if (!slot || intact(it)) return;
  slot->store(0, std::memory_order_release);
  unlink(it);
  g.unlock();
  ctr(w).crash_dropped.add();
  slabs_.free(it);
}

void StoreImpl::count_eviction(Worker& w, const Item* it, uint32_t now, bool expired) {
  ClassCounters& c = ctr(w).cls[it->clsid];
  bool fetched = it->state.load(std::memory_order_relaxed) & Item::kFetched;
  if (expired) {
    c.reclaimed.add();
    if (!fetched) c.expired_unfetched.add();
    return;
  }
  c.evicted.add();
  if (it->exptime != 0) c.evicted_nonzero.add();
  if (!fetched) c.evicted_unfetched.add();
  c.evicted_time.store(now - std::min(now, it->atime), std::memory_order_relaxed);
}

Item* StoreImpl::alloc(Worker& w, unsigned cls, uint32_t now) {
  auto evict = [&](Item* victim) {
    uint64_t h = common::hash_key({victim->key(), victim->nkey});
    Index::Guard g = index_.lock(h);
    std::atomic<uint64_t>* slot = index_.slot_of(g, off_of(victim));
    if (!slot || !(victim->state.load() & Item::kLinked)) return false;
    slot->store(0, std::memory_order_release);
    unlink(victim);
    count_eviction(w, victim, now, death(victim, now) != Death::alive);
    return true;
  };
  return slabs_.alloc(cls, evict);
}

void StoreImpl::fill(Item* it, std::string_view key, std::string_view value, uint32_t flags,
                     uint32_t exptime, uint32_t now) {
  it->nkey = static_cast<uint8_t>(key.size());
  it->nbytes = static_cast<uint32_t>(value.size() + 2);
  it->flags = flags;
  it->exptime = exptime;
  it->time = it->atime = now;
  it->epoch = epoch_;
  std::memcpy(it->key(), key.data(), key.size());
  if (value.data() != it->value()) std::memcpy(it->value(), value.data(), value.size());
  std::memcpy(it->value() + value.size(), "\r\n", 2);
  it->checksum = item_checksum(it);
}

void StoreImpl::link(Index::Guard& g, std::atomic<uint64_t>* slot, uint16_t tag, Item* fresh,
                     Item** to_free, Item** victim, Worker& w, uint32_t now) {
  fresh->cas = next_cas();
  fresh->state.store(Item::kLinked, std::memory_order_release);
  ClassState& c = slabs_.cls(fresh->clsid);
  c.number.fetch_add(1, std::memory_order_relaxed);
  c.mem_requested.fetch_add(fresh->total(), std::memory_order_relaxed);
  index_.on_link();
  uint64_t sv = make_slot(tag, off_of(fresh));
  if (slot) {
    *to_free = item_at(slot_offset(slot->load(std::memory_order_relaxed)));
    slot->store(sv, std::memory_order_release);
    unlink(*to_free);
    return;
  }
  if (index_.insert(g, tag, off_of(fresh))) return;
  // No overflow bucket left: the chain's least recently used item makes room.
  std::atomic<uint64_t>* oldest = nullptr;
  uint32_t oldest_atime = UINT32_MAX;
  index_.for_each_slot(g, [&](std::atomic<uint64_t>& s) {
    const Item* it = item_at(slot_offset(s.load(std::memory_order_relaxed)));
    if (it->atime <= oldest_atime) {
      oldest_atime = it->atime;
      oldest = &s;
    }
  });
  *victim = item_at(slot_offset(oldest->load(std::memory_order_relaxed)));
  oldest->store(sv, std::memory_order_release);
  unlink(*victim);
  count_eviction(w, *victim, now, death(*victim, now) != Death::alive);
}

}  // namespace cachet::store
