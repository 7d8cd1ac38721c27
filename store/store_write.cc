// Store writes: set/add/replace/cas, append/prepend, delete, touch, gat, incr/decr, flush_all.
// Allocation happens before a bucket lock is taken and freeing after it is released.
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/clock.hh"
#include "common/hash.hh"
#include "store/store_impl.hh"

namespace cachet::store {

size_t StoreImpl::value_max(size_t key_len) const {
  size_t largest = slabs_.chunk_size(slabs_.n_classes());
  size_t need = item_total(key_len, 0);
  size_t cap = std::min<size_t>(largest, opts_.item_size_max);
  return cap > need ? cap - need : 0;
}

StoreResult StoreImpl::store(Worker& w, Mode mode, std::string_view key, std::string_view value,
                             uint32_t flags, uint32_t exptime, uint64_t cas_in,
                             uint64_t* cas_out) {
  // The general write path with none of the meta protocol's extras; cas_in counts only for
  // Mode::cas, as this method's contract says.
  MetaStoreArgs a;
  a.mode = mode;
  a.cas_in = mode == Mode::cas ? cas_in : 0;
  StoreResult r = meta_store(w, key, value, flags, exptime, a, cas_out);
  if (mode == Mode::set && (r == StoreResult::too_large || r == StoreResult::no_memory))
    remove(w, key);  // memcached drops the stale value on a failed set
  return r;
}

bool StoreImpl::remove(Worker& w, std::string_view key) {
  const uint64_t h = common::hash_key(key);
  Index::Guard g = index_.lock(h);
  std::atomic<uint64_t>* slot = find_locked(g, h, key);
  if (!slot) return false;
  Item* it = item_at(slot_offset(slot->load()));
  bool live = death(it, common::now_unix()) == Death::alive;
  slot->store(0, std::memory_order_release);
  unlink(it);
  g.unlock();
  if (live) ctr(w).cls[it->clsid].delete_hits.add();
  slabs_.free(it);
  return live;
}

bool StoreImpl::touch(Worker& w, std::string_view key, uint32_t exptime) {
  const uint64_t h = common::hash_key(key);
  const uint32_t now = common::now_unix();
  Index::Guard g = index_.lock(h);
  std::atomic<uint64_t>* slot = find_locked(g, h, key);
  Item* it = slot ? item_at(slot_offset(slot->load())) : nullptr;
  if (!it || death(it, now) != Death::alive) return false;
  it->exptime = exptime;
  note_fetch(it, now);
  ctr(w).cls[it->clsid].touch_hits.add();
  return true;
}

bool StoreImpl::get_and_touch(Worker& w, std::string_view key, uint32_t exptime,
                              common::ByteBuf& /*out: appended to by fn under the lock*/, ReadFn fn) {
  const uint64_t h = common::hash_key(key);
  const uint32_t now = common::now_unix();
  Index::Guard g = index_.lock(h);
  std::atomic<uint64_t>* slot = find_locked(g, h, key);
  Item* it = slot ? item_at(slot_offset(slot->load())) : nullptr;
  if (!it || death(it, now) != Death::alive || !intact(it)) return false;
  it->exptime = exptime;
  note_fetch(it, now);
  // The lock keeps the item still, so the view is consistent without a retry.
  fn(ItemView{key, {it->value(), it->nbytes - 2}, it->flags, it->exptime, it->cas});
  auto& c = ctr(w).cls[it->clsid];
  c.touch_hits.add();
  c.get_hits.add();
  return true;
}

// memcached's safe_strtoull over an item value (which ends in "\r\n").
bool parse_counter(const char* data, size_t len, uint64_t* out) {
  char small[64];
  char* buf = len < sizeof(small) ? small : static_cast<char*>(std::malloc(len + 1));
  std::memcpy(buf, data, len);
  buf[len] = '\0';
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(buf, &end, 10);
  bool ok = errno != ERANGE && end != buf &&
            (std::isspace(static_cast<unsigned char>(*end)) || *end == '\0');
  if (ok && static_cast<long long>(v) < 0 && std::memchr(buf, '-', end - buf)) ok = false;
  if (buf != small) std::free(buf);
  *out = v;
  return ok;
}

DeltaResult StoreImpl::delta(Worker& w, std::string_view key, bool incr, uint64_t by,
                             uint64_t* result, uint64_t* cas_out) {
  // The general incr/decr with none of the meta protocol's extras (no cas, touch or vivify,
  // so neither `exists` nor `created` can come back).
  MetaDeltaArgs a;
  a.incr = incr;
  a.delta = by;
  MetaDeltaOut out;
  switch (meta_delta(w, key, a, &out)) {
    case MetaDeltaResult::ok:
    case MetaDeltaResult::created:
      *result = out.value;
      if (cas_out) *cas_out = out.cas;
      return DeltaResult::ok;
    case MetaDeltaResult::non_numeric: return DeltaResult::non_numeric;
    case MetaDeltaResult::no_memory: return DeltaResult::no_memory;
    case MetaDeltaResult::not_found:
    case MetaDeltaResult::exists: break;
  }
  return DeltaResult::not_found;
}

void StoreImpl::flush_all(Worker&, uint32_t delay) {
  // memcached's rule: oldest_live = (now + delay) - 1; when that is not in the future, every
  // item stored so far (cas below a fresh cas) is gone too, within the same second.
  uint32_t now = common::now_unix();
  uint32_t oldest = (delay ? now + delay : now) - 1;
  hdr_->oldest_live.store(oldest, std::memory_order_relaxed);
  if (oldest <= now) hdr_->oldest_cas.store(next_cas(), std::memory_order_relaxed);
}

}  // namespace cachet::store
