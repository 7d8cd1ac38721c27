// The store's one write path: a read-modify-write of one key under its bucket lock, with the
// allocate-before-lock and free-after-unlock rule. Also flush_all and the value size limit.
#include <algorithm>
#include <cstring>

#include "common/clock.hh"
#include "store/counters.hh"
#include "store/store.hh"

namespace cachet::store {

size_t Store::value_max(size_t key_len) const {
  size_t largest = slabs_.chunk_size(slabs_.n_classes());
  size_t need = item_total(key_len, 0);
  size_t cap = std::min<size_t>(largest, opts_.item_size_max);
  return cap > need ? cap - need : 0;
}

void Store::flush_all(uint32_t delay) {
  // memcached's rule: oldest_live = (now + delay) - 1; when that is not in the future, every
  // item stored so far (cas below a fresh cas) is gone too, within the same second.
  uint32_t now = common::now_unix();
  uint32_t oldest = (delay ? now + delay : now) - 1;
  hdr_->oldest_live.store(oldest, std::memory_order_relaxed);
  if (oldest <= now) hdr_->oldest_cas.store(next_cas(), std::memory_order_relaxed);
}

void Store::count(Worker& w, unsigned cls, uint16_t counts) {
  if (counts == 0) return;
  ClassCounters& c = ctr(w).cls[cls];
  if (counts & kCountGetHit) c.get_hits.add();
  if (counts & kCountSet) c.cmd_set.add();
  if (counts & kCountDeleteHit) c.delete_hits.add();
  if (counts & kCountIncrHit) c.incr_hits.add();
  if (counts & kCountDecrHit) c.decr_hits.add();
  if (counts & kCountCasHit) c.cas_hits.add();
  if (counts & kCountCasBadval) c.cas_badval.add();
  if (counts & kCountTouchHit) c.touch_hits.add();
}

void Store::set_hidden(Item* it, bool hidden) {
  const uint8_t st = it->state.load(std::memory_order_relaxed);
  if (((st & Item::kHidden) != 0) == hidden) return;
  ClassState& c = slabs_.cls(it->clsid);
  if (hidden) {
    it->state.fetch_or(Item::kHidden, std::memory_order_relaxed);
    it->state.fetch_and(static_cast<uint8_t>(~Item::kAccessed), std::memory_order_relaxed);
    c.hidden.fetch_add(1, std::memory_order_relaxed);
  } else {
    it->state.fetch_and(static_cast<uint8_t>(~Item::kHidden), std::memory_order_relaxed);
    c.hidden.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Store::apply_edit(Item* it, const Change& ch, const ItemView& before, uint32_t now) {
  // Marks and the hidden bit are under the checksum.
  bool reseal = it->marks != ch.marks || before.hidden != ch.hidden;
  it->exptime = ch.exptime;
  it->marks = ch.marks;
  set_hidden(it, ch.hidden);
  if (ch.has_ext) {
    if (!before.ext) {
      // Room was checked by the caller: zero the padding, then the ext, then the bit.
      char* end = it->value() + it->nbytes;
      char* ext = reinterpret_cast<char*>(it) + Item::ext_offset(it->nkey, it->nbytes);
      std::memset(end, 0, static_cast<size_t>(ext - end));
      ClassState& c = slabs_.cls(it->clsid);
      const size_t grown = Item::ext_offset(it->nkey, it->nbytes) + sizeof(ItemExt) - it->total();
      c.mem_requested.fetch_add(grown, std::memory_order_relaxed);
      std::memcpy(ext, &ch.ext, sizeof(ItemExt));
      it->state.fetch_or(Item::kExt, std::memory_order_relaxed);
      reseal = true;
    } else if (std::memcmp(it->ext(), &ch.ext, sizeof(ItemExt)) != 0) {
      std::memcpy(it->ext(), &ch.ext, sizeof(ItemExt));
      reseal = true;
    }
  } else if (before.ext) {
    ClassState& c = slabs_.cls(it->clsid);
    const size_t shrunk = it->total() - (sizeof(Item) + it->nkey + it->nbytes);
    it->state.fetch_and(static_cast<uint8_t>(~Item::kExt), std::memory_order_relaxed);
    c.mem_requested.fetch_sub(shrunk, std::memory_order_relaxed);
    reseal = true;
  }
  if (ch.compose) {
    (*ch.compose)(it->value(), &before);
    reseal = true;
  }
  if (ch.new_cas) it->cas = next_cas();
  if (ch.restamp) it->time = now;
  if (reseal) seal(it);
  if (ch.bump && !ch.hidden) note_fetch(it, now, ch.fetched);
}

void Store::fill(Item* it, std::string_view key, const Change& ch, const ItemView* current,
                 bool value_in_place, std::string_view value, uint32_t now) {
  it->nkey = static_cast<uint8_t>(key.size());
  it->nbytes = static_cast<uint32_t>(ch.value_len + 2);
  it->flags = ch.flags;
  it->exptime = ch.exptime;
  it->time = it->atime = now;
  it->marks = ch.marks;
  std::memcpy(it->key(), key.data(), key.size());
  if (ch.compose) {
    (*ch.compose)(it->value(), current);
  } else if (!value_in_place && ch.value_len) {
    std::memcpy(it->value(), value.data(), ch.value_len);
  }
  std::memcpy(it->value() + ch.value_len, "\r\n", 2);
  uint8_t st = 0;
  if (ch.hidden) st |= Item::kHidden;
  if (ch.has_ext) {
    char* end = it->value() + it->nbytes;
    char* ext = reinterpret_cast<char*>(it) + Item::ext_offset(it->nkey, it->nbytes);
    std::memset(end, 0, static_cast<size_t>(ext - end));
    std::memcpy(ext, &ch.ext, sizeof(ItemExt));
    st |= Item::kExt;
  }
  it->state.store(st, std::memory_order_relaxed);
  seal(it);
}

UpdateResult Store::update(Worker& w, std::string_view key, uint64_t h, const UpdateArgs& args,
                           DecideFn decide, uint64_t* cas_out) {
  const uint32_t now = common::now_unix();
  const uint16_t tag = Index::tag_of(h);
  Item* fresh = nullptr;        // a chunk allocated outside the lock for a write
  bool fresh_valued = false;    // it already holds args.value
  auto drop_fresh = [&] {
    if (fresh) slabs_.free(fresh);
    fresh = nullptr;
    fresh_valued = false;
  };
  // A chunk of class cls, allocated with no lock held. args.value is copied into it when the
  // write will take it, so that a large copy never happens under the bucket lock.
  auto allocate = [&](unsigned cls, bool copy_value) {
    fresh = alloc(w, cls, now);
    if (!fresh) {
      ctr(w).cls[cls].outofmemory.add();
      return false;
    }
    if (copy_value && !args.value.empty())
      std::memcpy(fresh->key() + key.size(), args.value.data(), args.value.size());
    fresh_valued = copy_value;
    return true;
  };
  if (args.prepare) {
    const size_t total = item_total(key.size(), args.value.size());
    const unsigned cls = total <= opts_.item_size_max ? slabs_.class_for(total) : 0;
    if (cls == 0) return UpdateResult::too_large;
    if (!allocate(cls, true)) return UpdateResult::no_memory;
  }

  for (;;) {
    Index::Guard g = index_.lock(h);
    std::atomic<uint64_t>* slot = find_locked(g, h, key);
    Item* it = slot ? item_at(slot_offset(slot->load(std::memory_order_relaxed))) : nullptr;
    Death dead = it ? death(it, now) : Death::alive;
    const bool live = it && dead == Death::alive && intact(it);
    ItemView before{};
    Change ch;
    if (live) {
      before = view_of(it);
      ch.flags = before.flags;
      ch.exptime = before.exptime;
      ch.marks = before.marks;
      ch.hidden = before.hidden;
      ch.has_ext = before.ext != nullptr;
      if (before.ext) ch.ext = *before.ext;
      ch.value_len = before.value.size();
    }
    decide(live ? &before : nullptr, ch);

    Change::Op op = ch.op;
    if (!live && (op == Change::Op::edit || op == Change::Op::remove)) op = Change::Op::keep;
    // An edit that resizes the value, or adds an ext to an item whose chunk has no room for
    // it, becomes a write of a new item (a copy of the value unless compose makes one).
    bool copy_current = false;
    if (op == Change::Op::edit && ch.compose && ch.value_len != before.value.size()) {
      op = Change::Op::write;
    } else if (op == Change::Op::edit && ch.has_ext && !before.ext &&
               item_total(it->nkey, it->nbytes - 2, true) > slabs_.chunk_size(it->clsid)) {
      op = Change::Op::write;
      copy_current = !ch.compose;
      ch.value_len = before.value.size();
    }

    if (op == Change::Op::write) {
      const size_t total = item_total(key.size(), ch.value_len, ch.has_ext);
      const unsigned cls = total <= opts_.item_size_max ? slabs_.class_for(total) : 0;
      if (cls == 0) {
        g.unlock();
        drop_fresh();
        return UpdateResult::too_large;
      }
      if (!fresh || fresh->clsid != cls) {
        g.unlock();
        drop_fresh();
        const bool take_value = !ch.compose && !copy_current && ch.value_len == args.value.size();
        if (!allocate(cls, take_value)) return UpdateResult::no_memory;
        continue;  // decide again: the item may have changed while we allocated
      }
      if (!fresh_valued && !ch.compose && !copy_current && ch.value_len != args.value.size()) {
        // The decision asked for a value of neither source: a caller bug, never data loss.
        g.unlock();
        drop_fresh();
        return UpdateResult::too_large;
      }
      auto copy_fn = [](char* dst, const ItemView* cur) {
        std::memcpy(dst, cur->value.data(), cur->value.size());
      };
      if (copy_current) ch.compose.emplace(copy_fn);
      fill(fresh, key, ch, live ? &before : nullptr, fresh_valued, args.value, now);
      Item *to_free = nullptr, *victim = nullptr;
      link(g, slot, tag, fresh, &to_free, &victim, w, now);
      if (ch.bump && !ch.hidden) note_fetch(fresh, now, ch.fetched);
      count(w, fresh->clsid, ch.counts);
      const unsigned fresh_cls = fresh->clsid;
      if (cas_out) *cas_out = fresh->cas;
      const uint64_t linked = off_of(fresh);
      fresh = nullptr;
      g.unlock();
      if (to_free) slabs_.free(to_free);
      if (victim) slabs_.free(victim);
      // ttl_sets counts what the sweeps must find (the wheel's items are the reaper's).
      if (ch.exptime && !note_exptime(w, linked, ch.exptime, now)) ctr(w).cls[fresh_cls].ttl_sets.add();
      index_.maybe_grow();
      ctr(w).total_items.add();
      return UpdateResult::done;
    }

    Item* unlinked = nullptr;
    uint64_t retimed = 0;  // an edited item whose exptime changed
    unsigned retimed_cls = 0;
    if (op == Change::Op::remove) {
      slot->store(0, std::memory_order_release);
      unlink(it);
      unlinked = it;
      count(w, it->clsid, ch.counts);
      if (cas_out) *cas_out = 0;
    } else if (op == Change::Op::edit) {
      apply_edit(it, ch, before, now);
      count(w, it->clsid, ch.counts);
      if (ch.exptime != before.exptime && ch.exptime) {
        retimed_cls = it->clsid;
        retimed = off_of(it);
      }
      if (cas_out) *cas_out = it->cas;
    } else if (live) {
      if (ch.bump && !before.hidden) note_fetch(it, now, ch.fetched);
      count(w, it->clsid, ch.counts);
      if (cas_out) *cas_out = it->cas;
    } else if (cas_out) {
      *cas_out = 0;
    }
    // A dead item in the slot goes now, as a reader would reap it.
    const uint64_t dead_off = !live && it ? off_of(it) : 0;
    g.unlock();
    drop_fresh();
    if (unlinked) slabs_.free(unlinked);
    if (retimed && !note_exptime(w, retimed, ch.exptime, now))
      ctr(w).cls[retimed_cls].ttl_sets.add();
    if (dead_off && dead != Death::alive) reap(w, h, dead_off);
    if (dead_off && dead == Death::alive) drop_torn(w, h, dead_off);
    return UpdateResult::done;
  }
}

}  // namespace cachet::store
