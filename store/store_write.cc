// Store writes: set/add/replace/cas, append/prepend, delete, touch, gat, incr/decr, flush_all.
// Allocation happens before a bucket lock is taken and freeing after it is released.
#include <cctype>
#include <cerrno>
#include <charconv>
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
  const uint64_t h = common::hash_key(key);
  const uint32_t now = common::now_unix();
  for (;;) {
    Index::Guard g = index_.lock(h);
    std::atomic<uint64_t>* slot = find_locked(g, h, key);
    Item* it = slot ? item_at(slot_offset(slot->load())) : nullptr;
    if (!it || death(it, now) != Death::alive || !intact(it)) return DeltaResult::not_found;
    uint64_t v;
    if (it->nbytes <= 2 || !parse_counter(it->value(), it->nbytes, &v))
      return DeltaResult::non_numeric;
    v = incr ? v + by : (by > v ? 0 : v - by);
    char digits[24];
    size_t n = static_cast<size_t>(std::to_chars(digits, digits + sizeof(digits), v).ptr - digits);
    *result = v;
    auto& c = ctr(w).cls[it->clsid];
    (incr ? c.incr_hits : c.decr_hits).add();
    if (n + 2 <= it->nbytes) {
      // In place, padded with spaces, as memcached does.
      std::memset(it->value() + n, ' ', it->nbytes - 2 - n);
      std::memcpy(it->value(), digits, n);
      it->cas = next_cas();
      it->time = now;
      it->checksum = item_checksum(it);
      it->epoch = epoch_;
      if (cas_out) *cas_out = it->cas;
      return DeltaResult::ok;
    }
    // The number grew past the old length: a new item replaces the old one.
    uint64_t seen_off = off_of(it), seen_cas = it->cas;
    uint32_t flags = it->flags, exptime = it->exptime;
    g.unlock();
    unsigned cls = slabs_.class_for(item_total(key.size(), n));
    Item* fresh = cls ? alloc(w, cls, now) : nullptr;
    if (!fresh) return DeltaResult::no_memory;
    fill(fresh, key, {digits, n}, flags, exptime, now);
    Index::Guard g2 = index_.lock(h);
    slot = find_locked(g2, h, key);
    if (!slot || slot_offset(slot->load()) != seen_off || item_at(seen_off)->cas != seen_cas) {
      g2.unlock();
      slabs_.free(fresh);
      continue;  // changed meanwhile: start over
    }
    Item *to_free = nullptr, *victim = nullptr;
    link(g2, slot, Index::tag_of(h), fresh, &to_free, &victim, w, now);
    if (cas_out) *cas_out = fresh->cas;
    g2.unlock();
    if (to_free) slabs_.free(to_free);
    if (victim) slabs_.free(victim);
    return DeltaResult::ok;
  }
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
