// The meta protocol's item operations (mg ms md ma me): store()/delta() with memcached's meta
// extras, and the per-item meta state (stale, win sent, binary key) kept in Item::state bits.
// Same rules as store_write.cc: readers never lock, writers hold one bucket lock, allocation
// happens before the lock is taken and freeing after it is released.
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "common/clock.hh"
#include "common/hash.hh"
#include "store/store_impl.hh"

namespace cachet::store {
namespace {

constexpr std::string_view kEmpty{"", 0};  // a non-null empty value (memcpy needs a pointer)

}  // namespace

MetaView StoreImpl::meta_view(Item* it, std::string_view key, const MetaGetArgs& a) const {
  const uint8_t st = it->state.load(std::memory_order_acquire);
  MetaView m{};
  m.item = ItemView{key, {it->value(), it->nbytes - 2}, it->flags, it->exptime, it->cas};
  m.atime = it->atime;
  m.total = static_cast<uint32_t>(it->total());
  m.clsid = it->clsid;
  m.fetched = st & Item::kFetched;
  m.stale = st & Item::kStale;
  m.win_sent = st & Item::kWinSent;
  m.key_binary = st & Item::kKeyBinary;
  m.exptime = it->exptime;
  m.bump = a.bump;
  return m;
}

// Under the bucket lock: what the callback asked for, then the access and the hit count.
void StoreImpl::meta_apply(Worker& w, Item* it, const MetaView& m, const MetaGetArgs& a,
                           uint32_t now) {
  if (m.exptime != it->exptime) it->exptime = m.exptime;
  if (m.win) it->state.fetch_or(Item::kWinSent, std::memory_order_relaxed);
  if (m.bump) note_fetch(it, now);
  if (a.count) {
    ClassCounters& c = ctr(w).cls[it->clsid];
    (a.touch ? c.touch_hits : c.get_hits).add();
  }
}

bool StoreImpl::meta_get(Worker& w, std::string_view key, const MetaGetArgs& a,
                         common::ByteBuf& out, MetaFn fn) {
  const uint64_t h = common::hash_key(key);
  const uint32_t now = common::now_unix();
  // A plain read takes no lock; it moves to the locked path only when fn asks for a change.
  while (!a.touch) {
    Index::Ticket t;
    Item* it = nullptr;
    Lookup r = find_live(w, key, h, now, &t, &it);
    if (r == Lookup::retry) continue;
    if (r == Lookup::implausible) return false;
    if (r == Lookup::miss) {
      if (!a.vivify) return false;
      break;
    }
    MetaView m = meta_view(it, key, a);
    const size_t mark = out.size();
    fn(m);
    if (!index_.read_valid(t)) {
      out.truncate(mark);
      continue;
    }
    if (m.exptime == m.item.exptime && !m.win) {
      if (m.bump) note_fetch(it, now);
      if (a.count) ctr(w).cls[it->clsid].get_hits.add();
      return true;
    }
    out.truncate(mark);
    break;
  }
  return meta_get_locked(w, key, h, a, fn, now);
}

bool StoreImpl::meta_get_locked(Worker& w, std::string_view key, uint64_t h,
                                const MetaGetArgs& a, MetaFn fn, uint32_t now) {
  Item* fresh = nullptr;  // the item a vivifying miss links, allocated before the lock
  for (;;) {
    Index::Guard g = index_.lock(h);
    std::atomic<uint64_t>* slot = find_locked(g, h, key);
    Item* it = slot ? item_at(slot_offset(slot->load())) : nullptr;
    Item *to_free = nullptr, *victim = nullptr;
    bool created = false;
    if (!it || death(it, now) != Death::alive || !intact(it)) {
      if (!a.vivify) {
        uint64_t off = it ? off_of(it) : 0;
        Death d = it ? death(it, now) : Death::alive;
        g.unlock();
        if (fresh) slabs_.free(fresh);
        if (off && d != Death::alive) reap(w, h, off, d);
        if (off && d == Death::alive) drop_torn(w, h, off);
        return false;
      }
      if (!fresh) {
        g.unlock();
        unsigned cls = slabs_.class_for(item_total(key.size(), 0));
        fresh = cls ? alloc(w, cls, now) : nullptr;
        if (!fresh) return false;  // memcached: a vivify that cannot allocate is a miss
        fill(fresh, key, kEmpty, 0, 0, now);
        continue;
      }
      link(g, slot, Index::tag_of(h), fresh, &to_free, &victim, w, now);
      it = fresh;
      fresh = nullptr;
      created = true;
    }
    MetaView m = meta_view(it, key, a);
    m.created = created;
    fn(m);
    meta_apply(w, it, m, a, now);
    g.unlock();
    if (fresh) slabs_.free(fresh);  // another request linked the key first
    if (to_free) slabs_.free(to_free);
    if (victim) slabs_.free(victim);
    if (created) {
      index_.maybe_grow();
      ctr(w).total_items.add();
    }
    return true;
  }
}

StoreResult StoreImpl::meta_store(Worker& w, std::string_view key, std::string_view value,
                                  uint32_t flags, uint32_t exptime, const MetaStoreArgs& a,
                                  uint64_t* cas_out) {
  const Mode mode = a.mode;
  const uint32_t now = common::now_unix();
  const uint64_t h = common::hash_key(key);
  const uint16_t tag = Index::tag_of(h);
  const bool concat = mode == Mode::append || mode == Mode::prepend;

  for (;;) {
    // append/prepend must know the old value's size before allocating.
    uint64_t seen_off = 0, seen_cas = 0;
    size_t old_len = 0;
    if (concat) {
      Index::Guard g = index_.lock(h);
      std::atomic<uint64_t>* slot = find_locked(g, h, key);
      Item* old = slot ? item_at(slot_offset(slot->load())) : nullptr;
      if (!old || death(old, now) != Death::alive || !intact(old)) return StoreResult::not_stored;
      if (a.cas_in != 0 && old->cas != a.cas_in) return StoreResult::exists;
      seen_off = off_of(old);
      seen_cas = old->cas;
      old_len = old->nbytes - 2;
    }
    size_t total = item_total(key.size(), old_len + value.size());
    unsigned cls = total <= opts_.item_size_max ? slabs_.class_for(total) : 0;
    if (cls == 0) return concat ? StoreResult::not_stored : StoreResult::too_large;
    Item* fresh = alloc(w, cls, now);
    if (!fresh) {
      ctr(w).cls[cls].outofmemory.add();
      return StoreResult::no_memory;
    }
    if (!concat) fill(fresh, key, value, flags, exptime, now);

    Index::Guard g = index_.lock(h);
    std::atomic<uint64_t>* slot = find_locked(g, h, key);
    Item* old = slot ? item_at(slot_offset(slot->load())) : nullptr;
    const bool live = old && death(old, now) == Death::alive;
    // memcached marks the stored item binary-keyed, except an appended one (a fresh copy).
    uint8_t bits = a.key_binary && !concat ? Item::kKeyBinary : 0;
    StoreResult reject = StoreResult::stored;
    switch (mode) {
      case Mode::add:
        if (live) {
          old->state.fetch_or(Item::kAccessed, std::memory_order_relaxed);
          reject = StoreResult::not_stored;
        }
        break;
      case Mode::replace:
        if (!live) reject = StoreResult::not_stored;
        break;
      case Mode::cas:
        if (!live) {
          reject = StoreResult::not_found;
        } else if (old->cas == a.cas_in) {
        } else if (a.invalidate && a.cas_in < old->cas) {
          // memcached's stale cas: stored, keeping the exptime and win state, marked stale.
          fresh->exptime = old->exptime;
          bits |= Item::kStale | (old->state.load(std::memory_order_relaxed) & Item::kWinSent);
        } else {
          ctr(w).cls[old->clsid].cas_badval.add();
          reject = StoreResult::exists;
        }
        break;
      case Mode::append:
      case Mode::prepend:
        if (!live) {
          reject = StoreResult::not_stored;
        } else if (a.cas_in != 0 && old->cas != a.cas_in) {
          reject = StoreResult::exists;
        } else if (off_of(old) != seen_off || old->cas != seen_cas) {
          g.unlock();  // changed since it was measured: measure again
          slabs_.free(fresh);
          continue;
        } else {
          std::string_view ov{old->value(), old_len};
          fresh->nkey = static_cast<uint8_t>(key.size());
          std::memcpy(fresh->key(), key.data(), key.size());
          char* v = fresh->value();
          const bool app = mode == Mode::append;
          std::memcpy(v, app ? ov.data() : value.data(), app ? ov.size() : value.size());
          std::memcpy(v + (app ? ov.size() : value.size()), app ? value.data() : ov.data(),
                      app ? value.size() : ov.size());
          fill(fresh, key, {v, ov.size() + value.size()}, old->flags, old->exptime, now);
        }
        break;
      case Mode::set:
        break;
    }
    if (reject != StoreResult::stored) {
      g.unlock();
      slabs_.free(fresh);
      return reject;
    }
    Item *to_free = nullptr, *victim = nullptr;
    link(g, slot, tag, fresh, &to_free, &victim, w, now);
    if (bits) fresh->state.fetch_or(bits, std::memory_order_relaxed);
    if (cas_out) *cas_out = fresh->cas;
    g.unlock();
    if (to_free) slabs_.free(to_free);
    if (victim) slabs_.free(victim);
    index_.maybe_grow();
    auto& c = ctr(w);
    c.total_items.add();
    c.cls[cls].cmd_set.add();
    if (mode == Mode::cas) c.cls[cls].cas_hits.add();
    return StoreResult::stored;
  }
}

MetaDeleteResult StoreImpl::meta_delete(Worker& w, std::string_view key,
                                        const MetaDeleteArgs& a) {
  const uint64_t h = common::hash_key(key);
  Index::Guard g = index_.lock(h);
  std::atomic<uint64_t>* slot = find_locked(g, h, key);
  if (!slot) return MetaDeleteResult::not_found;
  Item* it = item_at(slot_offset(slot->load()));
  const bool live = death(it, common::now_unix()) == Death::alive;
  if (live && a.has_cas && it->cas != a.cas_in) return MetaDeleteResult::exists;
  if (live && a.invalidate) {
    if (a.touch) it->exptime = a.exptime;
    it->state.fetch_or(Item::kStale, std::memory_order_relaxed);
    it->state.fetch_and(static_cast<uint8_t>(~Item::kWinSent), std::memory_order_relaxed);
    it->cas = next_cas();
    return MetaDeleteResult::invalidated;
  }
  // Deleted, or dead already (unlinked on the way, as remove() does).
  slot->store(0, std::memory_order_release);
  unlink(it);
  g.unlock();
  if (live) ctr(w).cls[it->clsid].delete_hits.add();
  slabs_.free(it);
  return live ? MetaDeleteResult::deleted : MetaDeleteResult::not_found;
}

MetaDeltaResult StoreImpl::meta_delta(Worker& w, std::string_view key, const MetaDeltaArgs& a,
                                      MetaDeltaOut* out) {
  const uint64_t h = common::hash_key(key);
  const uint16_t tag = Index::tag_of(h);
  const uint32_t now = common::now_unix();
  Item* created = nullptr;  // a vivified item, allocated before the lock
  // Every exit unlocks before freeing (a class lock is never taken under a bucket lock).
  auto finish = [&](Index::Guard& g, MetaDeltaResult r) {
    g.unlock();
    if (created) slabs_.free(created);
    return r;
  };
  for (;;) {
    Index::Guard g = index_.lock(h);
    std::atomic<uint64_t>* slot = find_locked(g, h, key);
    Item* it = slot ? item_at(slot_offset(slot->load())) : nullptr;
    if (!it || death(it, now) != Death::alive || !intact(it)) {
      if (!a.vivify) return finish(g, MetaDeltaResult::not_found);
      if (!created) {
        g.unlock();
        char digits[24];
        size_t n = static_cast<size_t>(std::to_chars(digits, digits + 24, a.initial).ptr - digits);
        unsigned cls = slabs_.class_for(item_total(key.size(), n));
        created = cls ? alloc(w, cls, now) : nullptr;
        if (!created) return MetaDeltaResult::no_memory;
        fill(created, key, {digits, n}, 0, a.vivify_exptime, now);
        continue;
      }
      Item *to_free = nullptr, *victim = nullptr;
      link(g, slot, tag, created, &to_free, &victim, w, now);
      *out = MetaDeltaOut{a.initial, created->cas, 0};
      created = nullptr;
      g.unlock();
      if (to_free) slabs_.free(to_free);
      if (victim) slabs_.free(victim);
      index_.maybe_grow();
      ctr(w).total_items.add();
      return MetaDeltaResult::created;
    }
    uint64_t v;
    if (it->nbytes <= 2) return finish(g, MetaDeltaResult::non_numeric);
    if (a.cas_in != 0 && it->cas != a.cas_in) return finish(g, MetaDeltaResult::exists);
    if (!parse_counter(it->value(), it->nbytes, &v)) {
      return finish(g, MetaDeltaResult::non_numeric);
    }
    v = a.incr ? v + a.delta : (a.delta > v ? 0 : v - a.delta);
    char digits[24];
    size_t n = static_cast<size_t>(std::to_chars(digits, digits + sizeof(digits), v).ptr - digits);
    out->value = v;
    out->exptime = it->exptime;
    auto count = [&](unsigned cls) {
      ClassCounters& c = ctr(w).cls[cls];
      (a.incr ? c.incr_hits : c.decr_hits).add();
    };
    if (n + 2 <= it->nbytes) {
      // In place, padded with spaces, as memcached does.
      std::memset(it->value() + n, ' ', it->nbytes - 2 - n);
      std::memcpy(it->value(), digits, n);
      it->cas = next_cas();
      it->time = now;
      if (a.touch) it->exptime = a.exptime;
      it->checksum = item_checksum(it);
      it->epoch = epoch_;
      out->cas = it->cas;
      count(it->clsid);
      return finish(g, MetaDeltaResult::ok);
    }
    // The number grew past the old length: a new item replaces the old one.
    uint64_t seen_off = off_of(it), seen_cas = it->cas;
    uint32_t flags = it->flags, exptime = a.touch ? a.exptime : it->exptime;
    g.unlock();
    unsigned cls = slabs_.class_for(item_total(key.size(), n));
    Item* grown = cls ? alloc(w, cls, now) : nullptr;
    if (!grown) return finish(g, MetaDeltaResult::no_memory);
    fill(grown, key, {digits, n}, flags, exptime, now);
    Index::Guard g2 = index_.lock(h);
    slot = find_locked(g2, h, key);
    if (!slot || slot_offset(slot->load()) != seen_off || item_at(seen_off)->cas != seen_cas) {
      g2.unlock();
      slabs_.free(grown);
      continue;  // changed meanwhile: start over
    }
    Item *to_free = nullptr, *victim = nullptr;
    link(g2, slot, tag, grown, &to_free, &victim, w, now);
    out->cas = grown->cas;
    count(to_free->clsid);
    g2.unlock();
    slabs_.free(to_free);
    if (victim) slabs_.free(victim);
    return finish(g2, MetaDeltaResult::ok);
  }
}

}  // namespace cachet::store
