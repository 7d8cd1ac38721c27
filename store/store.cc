// The store's reads and its shared machinery: opening the arena, lock-free lookups validated by
// bucket versions, expiry and flush, crash checks, allocation with eviction, linking.
#include <charconv>
#include <cstring>
#include <random>

#include <fmt/format.h>

#include "common/clock.hh"
#include "common/hash.hh"
#include "common/log.hh"
#include "store/counters.hh"
#include "store/store.hh"

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
  if (opts.workers == 0 || opts.upkeep_workers == 0) {
    *error = "the store needs at least one worker and one background worker";
    return nullptr;
  }
  auto arena = Arena::open(opts.shm, g, opts.chunk_min, opts.item_size_max, opts.growth_factor,
                           opts.discard_incompatible, error);
  if (!arena) return nullptr;
  // Nothing of an existing arena is used before its tables are known to be sound; what they
  // point to (index slots, free lists, items) is checked where it is used.
  std::string why;
  if (!arena->created() && !check_tables(*arena, g, &why)) {
    if (!opts.discard_incompatible) {
      *error = fmt::format("refusing arena {}: it is damaged ({}). Pass --shm-discard to drop "
                           "it and start empty",
                           arena->path(), why);
      return nullptr;
    }
    common::log::warn("discarding arena {}: it is damaged ({})", arena->path(), why);
    if (!arena->discard(error)) return nullptr;
  }
  return std::unique_ptr<Store>(new Store(opts, g, std::move(arena)));
}

bool Store::probe(const Options& opts, std::string* error) {
  Geometry g{};
  if (!Geometry::compute(opts.memory_mb << 20, opts.item_size_max, opts.chunk_min,
                         opts.growth_factor, &g, error))
    return false;
  return Arena::probe(opts.shm, g, opts.chunk_min, opts.item_size_max, opts.growth_factor, error);
}

namespace {

// A crash epoch other than `old` and 0, from the system's entropy.
uint32_t fresh_epoch(uint32_t old) {
  std::random_device rd;
  for (;;) {
    const uint32_t e = rd();
    if (e != 0 && e != old) return e;
  }
}

}  // namespace

Store::Store(const Options& opts, const Geometry& g, std::unique_ptr<Arena> arena)
    : opts_(opts),
      geo_(g),
      arena_(std::move(arena)),
      hdr_(arena_->header()),
      slabs_(*arena_, g, arena_->created()),
      index_(*arena_, g, arena_->created()),
      wheel_(*arena_, g, arena_->created(), common::now_unix()) {
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
    hdr_->off_wheel = g.off_wheel;
    hdr_->off_wheel_blocks = g.off_wheel_blocks;
    hdr_->wheel_blocks = g.wheel_blocks;
    hdr_->move_page.store(kNoPage);
    hdr_->repair_pending.store(0);
    hdr_->created_unix = common::now_unix();
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(hdr_->magic, kMagic, sizeof(kMagic));
  }
  // Every attach starts a crash epoch of its own, drawn at random: an item stamped with
  // another one is checked against its checksum on first use, so bytes torn by a crash or
  // damaged while no process held the arena are dropped, never served (and no stamp left in
  // the arena can match by chance of history). Attach stays O(1): no walk over the items.
  epoch_ = fresh_epoch(hdr_->epoch.load());
  hdr_->epoch.store(epoch_);
  if (!arena_->created()) {
    // The arena's lock (flock) is ours: no spin lock in it can be held by anyone now.
    slabs_.break_stale_locks();
    const bool crashed = hdr_->attached.load() != 0;
    index_.break_stale_locks(crashed);
    recover_on_attach(crashed);
  }
  hdr_->attached.store(1);
  workers_.reserve(opts.workers + opts.upkeep_workers);
  for (unsigned i = 0; i < opts.workers + opts.upkeep_workers; ++i) {
    workers_.push_back(Worker(i));
    counters_.push_back(std::make_unique<WorkerCounters>());
  }
}

void Store::recover_on_attach(bool crashed) {
  wheel_.break_stale_locks();
  if (crashed) {
    // The last process that used this arena died attached: an item it was changing in place
    // may be torn, chunks it had taken may be neither linked nor free, and its lists may be
    // half changed. Items are checked against their checksum on first use in the new epoch;
    // the page table is relisted below (O(pages)); the chunks are repaired by a background scan
    // of every page (Upkeep); the transient wheel starts empty and that scan puts the
    // transient items back. Never a walk over all items here.
    common::log::warn("arena {} was not detached cleanly; cleared its stale locks, items are "
                      "verified on first use and chunks repaired in the background",
                      arena_->path());
    wheel_.reset(common::now_unix());
    hdr_->repair_pending.store(1);
  }
  // The classes' lists of pages with free chunks are rebuilt from the page table on every
  // attach (O(pages), microseconds): a link damaged while no process held the arena is never
  // followed (fuzz_arena: a wild free_pages link written through on the first free).
  slabs_.relist_free_pages();
  // A page the last process was draining goes back to its class; the new one may move it again.
  const uint32_t moving = hdr_->move_page.load();
  if (moving != kNoPage && moving < hdr_->n_pages) slabs_.cancel_drain(moving);
  hdr_->move_page.store(kNoPage);
}

Store::~Store() {
  if (arena_->locked()) hdr_->attached.store(0);
}

void Store::detach() {
  hdr_->attached.store(0);
  arena_->unlock();
}

Store::Death Store::death(const Item* it, uint32_t now) const {
  if (it->exptime != 0 && it->exptime <= now) return Death::expired;
  uint32_t oldest_live = hdr_->oldest_live.load(std::memory_order_relaxed);
  if (oldest_live != 0 && oldest_live <= now) {
    uint64_t oldest_cas = hdr_->oldest_cas.load(std::memory_order_relaxed);
    if (it->time <= oldest_live || (oldest_cas != 0 && it->cas < oldest_cas))
      return Death::flushed;
  }
  return Death::alive;
}

bool Store::intact(Item* it) {
  if (it->epoch == epoch_) return true;
  if (item_checksum(it) != it->checksum) return false;
  it->epoch = epoch_;  // a hint, written racily: a second check is harmless
  return true;
}

void Store::seal(Item* it) {
  it->checksum = item_checksum(it);
  it->epoch = epoch_;
}

bool Store::sane(const Item* it) const {
  unsigned cls = it->clsid;
  const uint8_t st = it->state.load(std::memory_order_relaxed);
  return cls >= 1 && cls <= slabs_.n_classes() && it->nbytes >= 2 &&
         (st & (Item::kLinked | Item::kFree)) == Item::kLinked &&
         it->total() <= slabs_.chunk_size(cls) &&
         off_of(it) + it->total() <= geo_.off_items + uint64_t{geo_.n_pages} * geo_.page_size;
}

void Store::note_fetch(Item* it, uint32_t now, bool fetched) {
  uint8_t st = it->state.load(std::memory_order_relaxed);
  const uint8_t bits = fetched ? Item::kAccessed | Item::kFetched : Item::kAccessed;
  if ((st & bits) != bits) {
    // The first access since the CLOCK hand passed: the access time becomes exact, so an item
    // the hand may take next (reference bit clear) carries its true idle time, which the
    // rebalancer's ages compare. Same cache line as the bit, written only when it is.
    it->state.fetch_or(bits, std::memory_order_relaxed);
    it->atime = now;
  } else if (now - it->atime >= 60) {
    it->atime = now;  // memcached's ITEM_UPDATE_INTERVAL
  }
}

Store::Lookup Store::find_live(Worker& w, std::string_view key, uint64_t h, uint32_t now,
                                       Index::Ticket* t, Item** found) {
  *t = index_.read_begin(h);
  uint64_t off = index_.find(t->bucket, Index::tag_of(h), [&](uint64_t o) {
    return index_.in_items(o) && key_matches(item_at(o), key);
  });
  if (off == 0) return index_.read_valid(*t) ? Lookup::miss : Lookup::retry;
  Item* it = item_at(off);
  const bool plausible = sane(it);
  Death d = death(it, now);
  if (!plausible || d != Death::alive) {
    if (!index_.read_valid(*t)) return Lookup::retry;
    if (!plausible) return Lookup::implausible;
    reap(w, h, off);
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

ItemView Store::view_of(const Item* it) const {
  const uint8_t st = it->state.load(std::memory_order_acquire);
  return ItemView{{it->key(), it->nkey},
                  {it->value(), it->nbytes - 2},
                  it->flags,
                  it->exptime,
                  it->cas,
                  it->time,
                  it->atime,
                  static_cast<uint32_t>(it->total()),
                  it->clsid,
                  it->marks,
                  (st & Item::kFetched) != 0,
                  (st & Item::kHidden) != 0,
                  (st & Item::kExt) ? it->ext() : nullptr};
}

ReadResult Store::read(Worker& w, std::string_view key, uint64_t h, const ReadArgs& args,
                       common::ByteBuf& out, ReadFn fn) {
  const uint32_t now = common::now_unix();
  for (;;) {
    Index::Ticket t;
    Item* it = nullptr;
    Lookup r = find_live(w, key, h, now, &t, &it);
    if (r == Lookup::retry) continue;
    if (r != Lookup::found) return ReadResult::miss;
    const ItemView v = view_of(it);
    if (v.hidden && !args.hidden) {
      if (!index_.read_valid(t)) continue;
      return ReadResult::miss;
    }
    const size_t mark = out.size();
    const bool served = fn(v);
    if (!index_.read_valid(t)) {
      out.truncate(mark);
      continue;
    }
    if (!served) {
      out.truncate(mark);
      return ReadResult::declined;
    }
    if (args.bump && !v.hidden) note_fetch(it, now);
    if (args.count) ctr(w).cls[v.clsid].get_hits.add();
    return ReadResult::hit;
  }
}

uint64_t Store::prefetch_bucket(std::string_view key) const {
  const uint64_t h = common::hash_key(key);
  __builtin_prefetch(index_.bucket_hint(h));
  return h;
}

void Store::prefetch_item(uint64_t h) const {
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

std::atomic<uint64_t>* Store::find_locked(Index::Guard& g, uint64_t hash,
                                              std::string_view key) {
  for (;;) {
    std::atomic<uint64_t>* slot = index_.find_slot(g, Index::tag_of(hash), [&](uint64_t o) {
      return index_.in_items(o) && key_matches(item_at(o), key);
    });
    if (!slot || sane(item_at(slot_offset(slot->load())))) return slot;
    // An impossible header under this key (a damaged arena): the slot is dropped; the chunk
    // is neither unlinked nor freed, as nothing in it can be trusted.
    slot->store(0, std::memory_order_release);
  }
}

void Store::unlink(Item* it) {
  // Stamped with this epoch before the bit goes: a crash scan (which reads the bit first) never
  // takes a chunk this process is about to free for one a dead process left behind.
  it->epoch = epoch_;
  const uint8_t st =
      it->state.fetch_and(static_cast<uint8_t>(~Item::kLinked), std::memory_order_release);
  ClassState& c = slabs_.cls(it->clsid);
  if (st & Item::kHidden) c.hidden.fetch_sub(1, std::memory_order_relaxed);
  c.number.fetch_sub(1, std::memory_order_relaxed);
  c.mem_requested.fetch_sub(it->total(), std::memory_order_relaxed);
  c.kv_bytes.fetch_sub(it->nkey + it->nbytes - 2, std::memory_order_relaxed);
  index_.on_unlink();
}

bool Store::note_exptime(Worker& w, uint64_t off, uint32_t exptime, uint32_t now) {
  const uint32_t ttl = transient_ttl_.load(std::memory_order_relaxed);
  if (exptime == 0 || exptime <= now || exptime - now >= ttl) return false;
  auto& c = ctr(w);
  const bool added = wheel_.add(off, exptime, w.id());
  (added ? c.transient_added : c.transient_untracked).add();
  return added;
}

Store::Death Store::unlink_if_dead(uint64_t hash, uint64_t off, uint32_t now) {
  Index::Guard g = index_.lock(hash);
  std::atomic<uint64_t>* slot = index_.slot_of(g, off);
  if (!slot) return Death::alive;
  Item* it = item_at(off);
  if (!sane(it)) return Death::alive;  // damaged: never freed on its own word
  const Death d = death(it, now);
  if (d == Death::alive) return d;
  slot->store(0, std::memory_order_release);
  unlink(it);
  return d;
}

void Store::reap(Worker& w, uint64_t hash, uint64_t off) {
  const uint32_t now = common::now_unix();
  const Death d = unlink_if_dead(hash, off, now);
  if (d == Death::alive) return;
  Item* it = item_at(off);
  auto& c = ctr(w);
  (d == Death::expired ? c.get_expired : c.get_flushed).add();
  if (d == Death::expired) count_eviction(w, it, now, true);
  slabs_.free(it);
}

void Store::drop_torn(Worker& w, uint64_t hash, uint64_t off) {
  Index::Guard g = index_.lock(hash);
  std::atomic<uint64_t>* slot = index_.slot_of(g, off);
  Item* it = item_at(off);
  if (!slot || !sane(it) || intact(it)) return;
  slot->store(0, std::memory_order_release);
  unlink(it);
  g.unlock();
  ctr(w).crash_dropped.add();
  slabs_.free(it);
}

void Store::count_eviction(Worker& w, const Item* it, uint32_t now, bool expired) {
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

Item* Store::alloc(Worker& w, unsigned cls, uint32_t now, bool may_move) {
  auto evict = [&](Item* victim) {
    uint64_t h = common::hash_key({victim->key(), victim->nkey});
    Index::Guard g = index_.lock(h);
    std::atomic<uint64_t>* slot = index_.slot_of(g, off_of(victim));
    if (!slot || !sane(victim)) return false;
    slot->store(0, std::memory_order_release);
    unlink(victim);
    count_eviction(w, victim, now, death(victim, now) != Death::alive);
    return true;
  };
  return slabs_.alloc(cls, evict, may_move);
}

void Store::link(Index::Guard& g, std::atomic<uint64_t>* slot, uint16_t tag, Item* fresh,
                     Item** to_free, Item** victim, Worker& w, uint32_t now) {
  fresh->cas = next_cas();
  const uint8_t st = fresh->state.load(std::memory_order_relaxed);  // kHidden, kExt from fill
  fresh->state.store(st | Item::kLinked, std::memory_order_release);
  ClassState& c = slabs_.cls(fresh->clsid);
  if (st & Item::kHidden) c.hidden.fetch_add(1, std::memory_order_relaxed);
  c.number.fetch_add(1, std::memory_order_relaxed);
  c.mem_requested.fetch_add(fresh->total(), std::memory_order_relaxed);
  c.kv_bytes.fetch_add(fresh->nkey + fresh->nbytes - 2, std::memory_order_relaxed);
  index_.on_link();
  uint64_t sv = make_slot(tag, off_of(fresh));
  if (slot) {
    *to_free = item_at(slot_offset(slot->load(std::memory_order_relaxed)));
    slot->store(sv, std::memory_order_release);
    unlink(*to_free);
    return;
  }
  if (index_.insert(g, tag, off_of(fresh))) return;
  // No overflow bucket left: the chain's least recently used item makes room (a slot of a
  // damaged arena that holds no sane item is simply taken over).
  std::atomic<uint64_t>* oldest = nullptr;
  uint32_t oldest_atime = UINT32_MAX;
  bool oldest_sane = true;
  index_.for_each_slot(g, [&](std::atomic<uint64_t>& s) {
    const uint64_t o = slot_offset(s.load(std::memory_order_relaxed));
    const bool ok = index_.in_items(o) && sane(item_at(o));
    const uint32_t atime = ok ? item_at(o)->atime : 0;
    if (!oldest || (!ok && oldest_sane) || (ok == oldest_sane && atime <= oldest_atime)) {
      oldest_atime = atime;
      oldest_sane = ok;
      oldest = &s;
    }
  });
  Item* old = item_at(slot_offset(oldest->load(std::memory_order_relaxed)));
  oldest->store(sv, std::memory_order_release);
  if (!oldest_sane) return;
  *victim = old;
  unlink(*victim);
  count_eviction(w, *victim, now, death(*victim, now) != Death::alive);
}

}  // namespace cachet::store
