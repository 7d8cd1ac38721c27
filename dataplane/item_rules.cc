// memcached's per-item rules as store decisions (see item_rules.hh). Each rule is one
// Store::update: it decides from the item it is shown, under the item's bucket lock.
#include "dataplane/item_rules.hh"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "common/clock.hh"
#include "dataplane/marks.hh"

namespace cachet::dataplane {

using store::Change;
using store::ItemView;

namespace {

constexpr std::string_view kEmpty{"", 0};  // a non-null empty value (memcpy needs a pointer)

// A live item the classic commands see.
inline bool visible(const ItemView* v) { return v && !v->hidden; }

}  // namespace

uint32_t store_exptime(int64_t exptime) {
  return exptime == 0 ? 0 : store::Store::absolute_exptime(exptime, common::now_unix());
}

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

bool ItemRules::touch_item(std::string_view key, uint64_t hash, uint32_t exptime, ItemFn* fn) {
  bool hit = false;
  auto decide = [&](const ItemView* cur, Change& ch) {
    hit = visible(cur);
    if (!hit) return;
    ch.op = Change::Op::edit;
    ch.exptime = exptime;
    ch.bump = ch.fetched = true;
    ch.counts = store::kCountTouchHit | (fn ? store::kCountGetHit : 0);
    if (fn) (*fn)(*cur);  // an edit never runs decide twice
  };
  store_.update(worker_, key, hash, {}, decide);
  return hit;
}

bool ItemRules::get_and_touch(std::string_view key, uint64_t hash, uint32_t exptime,
                              ItemFn* fn) {
  bool hit = touch_item(key, hash, exptime, fn);
  stats_.cmd_touch.add();
  (hit ? stats_.touch_hits : stats_.touch_misses).add();
  return hit;
}

StoreResult ItemRules::store_item(std::string_view key, uint64_t hash, std::string_view value,
                                  uint32_t flags, uint32_t exptime, const StoreArgs& a,
                                  uint64_t* cas_out) {
  const Mode mode = a.mode;
  const bool concat = mode == Mode::append || mode == Mode::prepend;
  const uint32_t now = common::now_unix();
  StoreResult res = StoreResult::stored;
  auto join = [&](char* dst, const ItemView* cur) {
    std::string_view first = mode == Mode::append ? cur->value : value;
    std::string_view second = mode == Mode::append ? value : cur->value;
    std::memcpy(dst, first.data(), first.size());
    std::memcpy(dst + first.size(), second.data(), second.size());
  };
  auto decide = [&](const ItemView* cur, Change& ch) {
    const bool live = visible(cur);
    bool stale_cas = false;
    res = StoreResult::stored;
    switch (mode) {
      case Mode::add:
        if (live) {
          ch.bump = true;  // memcached's do_item_update on a failed add: an access, not a fetch
          res = StoreResult::not_stored;
        } else if (marks::holdoff_active(cur, now)) {
          stats_.holdoff_refused.add();
          res = StoreResult::not_stored;
        }
        break;
      case Mode::replace:
        if (!live) res = StoreResult::not_stored;
        break;
      case Mode::cas:
        if (!live) {
          res = StoreResult::not_found;
        } else if (cur->cas == a.cas_in) {
        } else if (a.invalidate && a.cas_in != 0 && a.cas_in < cur->cas) {
          stale_cas = true;  // memcached's stale cas: stored, marked stale, old exptime kept
        } else {
          ch.counts = store::kCountCasBadval;
          res = StoreResult::exists;
        }
        break;
      case Mode::append:
      case Mode::prepend:
        if (!live) {
          res = StoreResult::not_stored;
        } else if (a.cas_in != 0 && cur->cas != a.cas_in) {
          res = StoreResult::exists;
        }
        break;
      case Mode::set:
        break;
    }
    if (res != StoreResult::stored) return;
    ch.op = Change::Op::write;
    ch.hidden = false;
    ch.counts = store::kCountSet | (mode == Mode::cas ? store::kCountCasHit : 0);
    if (concat) {  // a fresh copy with the old flags and exptime, no marks, no lease
      ch.value_len = cur->value.size() + value.size();
      ch.compose.emplace(join);
      ch.marks = 0;
      ch.has_ext = false;
      return;
    }
    ch.value_len = value.size();
    ch.flags = flags;
    if (stale_cas) {  // keeps the old exptime, win state and lease
      ch.marks = static_cast<uint8_t>(marks::kStale | (cur->marks & marks::kWinSent) |
                                      (a.key_binary ? marks::kKeyBinary : 0));
      return;
    }
    ch.exptime = exptime;
    ch.marks = a.key_binary ? marks::kKeyBinary : 0;
    ch.has_ext = false;  // a new value ends any lease, stale value and hold-off of the key
  };
  uint64_t cas = 0;
  const store::UpdateArgs args{concat ? kEmpty : value, !concat};
  switch (store_.update(worker_, key, hash, args, decide, &cas)) {
    case store::UpdateResult::done: break;
    case store::UpdateResult::too_large:
      return concat ? StoreResult::not_stored : StoreResult::too_large;
    case store::UpdateResult::no_memory: return StoreResult::no_memory;
  }
  if (res == StoreResult::stored && cas_out) *cas_out = cas;
  return res;
}

void ItemRules::drop(std::string_view key, uint64_t hash) {
  store_.update(worker_, key, hash, {}, [](const ItemView*, Change& ch) {
    ch.op = Change::Op::remove;
  });
}

StoreResult ItemRules::update(std::string_view key, uint64_t hash, std::string_view value,
                              uint32_t flags, uint32_t exptime, const StoreArgs& a,
                              uint64_t* cas_out, bool drop_on_refusal) {
  StoreResult r = store_item(key, hash, value, flags, exptime, a, cas_out);
  switch (r) {
    case StoreResult::stored:
      stats_.cmd_set.add();
      if (a.mode == Mode::cas) stats_.cas_hits.add();
      break;
    case StoreResult::not_stored:
      stats_.cmd_set.add();
      break;
    case StoreResult::exists:
      stats_.cmd_set.add();
      if (a.mode == Mode::cas) stats_.cas_badval.add();
      break;
    case StoreResult::not_found:
      stats_.cmd_set.add();
      stats_.cas_misses.add();
      break;
    case StoreResult::too_large:
    case StoreResult::no_memory:
      if (drop_on_refusal) drop(key, hash);
      break;
  }
  return r;
}

DeleteResult ItemRules::delete_item(std::string_view key, uint64_t hash, const DeleteArgs& a) {
  const uint32_t now = common::now_unix();
  const int64_t stale = tunables_.stale_window();
  const int64_t window = tunables_.lease_window();
  const uint64_t holdoff = std::min<uint64_t>(a.holdoff, static_cast<uint64_t>(tunables_.holdoff_max()));
  DeleteResult res = DeleteResult::not_found;
  bool plain = false;  // the fallback when keeping anything needs memory there is none of
  auto decide = [&](const ItemView* cur, Change& ch) {
    const bool live = visible(cur);
    if (live && a.has_cas && cur->cas != a.cas_in) {
      res = DeleteResult::exists;
      return;
    }
    if (live && a.invalidate) {  // md I: still served, marked stale; one client wins again
      res = DeleteResult::invalidated;
      ch.op = Change::Op::edit;
      if (a.touch) ch.exptime = a.exptime;
      ch.marks = static_cast<uint8_t>((cur->marks | marks::kStale) & ~marks::kWinSent);
      if (ch.has_ext) ch.ext.token = 0;
      ch.new_cas = true;
      return;
    }
    if (live) {
      res = DeleteResult::deleted;
      ch.counts = store::kCountDeleteHit;
      if (plain || (stale == 0 && holdoff == 0)) {
        ch.op = Change::Op::remove;
        return;
      }
      // Kept hidden: the value as stale for lease-get, and the hold-off.
      ch.op = Change::Op::edit;
      ch.hidden = true;
      ch.marks = stale ? static_cast<uint8_t>(marks::kDeleted | (cur->marks & marks::kKeyBinary))
                       : 0;
      const uint32_t stale_end = stale ? now + static_cast<uint32_t>(stale) : 0;
      if (holdoff == 0 && !cur->ext) {
        ch.exptime = stale_end;  // a hidden value without an ext is stale until its exptime
        return;
      }
      ch.has_ext = true;
      ch.ext = store::ItemExt{};  // the lease ends
      ch.ext.stale_until = stale_end;
      ch.ext.holdoff_until = holdoff ? now + static_cast<uint32_t>(holdoff) : 0;
      ch.exptime = marks::hidden_lifetime(ch.ext, window);
      return;
    }
    res = DeleteResult::not_found;
    if (plain) return;
    if (cur) {  // hidden: absent, but a delete still ends its lease and may hold it off
      if (!(cur->ext && cur->ext->token) && holdoff == 0) return;
      ch.has_ext = true;
      ch.ext = marks::ext_of(cur);
      ch.ext.token = 0;
      if (holdoff)
        ch.ext.holdoff_until = std::max(ch.ext.holdoff_until, now + static_cast<uint32_t>(holdoff));
      ch.exptime = marks::hidden_lifetime(ch.ext, window);
      // Nothing left to keep (a lease placeholder): it goes.
      ch.op = ch.exptime > now ? Change::Op::edit : Change::Op::remove;
      return;
    }
    if (holdoff == 0) return;
    ch.op = Change::Op::write;  // a tombstone that holds fills off
    ch.hidden = true;
    ch.value_len = 0;
    ch.has_ext = true;
    ch.ext.holdoff_until = now + static_cast<uint32_t>(holdoff);
    ch.exptime = marks::hidden_lifetime(ch.ext, window);
  };
  const store::UpdateArgs args{kEmpty, false};
  if (store_.update(worker_, key, hash, args, decide) != store::UpdateResult::done) {
    stats_.delete_kept_nothing.add();  // no memory to keep the value or the hold-off
    plain = true;
    store_.update(worker_, key, hash, args, decide);
  }
  if (holdoff && res != DeleteResult::exists && !plain) stats_.delete_holdoffs.add();
  return res;
}

DeleteResult ItemRules::remove(std::string_view key, uint64_t hash, const DeleteArgs& args) {
  DeleteResult r = delete_item(key, hash, args);
  (r == DeleteResult::deleted ? stats_.delete_hits : stats_.delete_misses).add();
  return r;
}

DeltaResult ItemRules::delta_item(std::string_view key, uint64_t hash, const DeltaArgs& a,
                                  DeltaOut* out) {
  DeltaResult res = DeltaResult::not_found;
  char digits[24];
  size_t n = 0;
  size_t pad_to = 0;
  // The number, padded with spaces to pad_to bytes (memcached rewrites in place that way).
  auto write_digits = [&](char* dst, const ItemView*) {
    std::memcpy(dst, digits, n);
    if (pad_to > n) std::memset(dst + n, ' ', pad_to - n);
  };
  auto decide = [&](const ItemView* cur, Change& ch) {
    if (!visible(cur)) {
      res = DeltaResult::not_found;
      if (!a.vivify) return;
      res = DeltaResult::created;
      n = static_cast<size_t>(std::to_chars(digits, digits + 24, a.initial).ptr - digits);
      pad_to = n;
      *out = DeltaOut{a.initial, 0, 0, true};
      ch.op = Change::Op::write;
      ch.value_len = n;
      ch.compose.emplace(write_digits);
      ch.flags = 0;
      ch.exptime = a.vivify_exptime;
      ch.marks = a.key_binary ? marks::kKeyBinary : 0;  // replies echo its key encoded
      ch.hidden = false;
      ch.has_ext = false;
      return;
    }
    out->creating = false;
    uint64_t v;
    if (cur->value.empty()) {
      res = DeltaResult::non_numeric;  // before the cas check, as memcached
      return;
    }
    if (a.cas_in != 0 && cur->cas != a.cas_in) {
      res = DeltaResult::exists;
      return;
    }
    if (!parse_counter(cur->value.data(), cur->value.size() + 2, &v)) {
      res = DeltaResult::non_numeric;
      return;
    }
    v = a.incr ? v + a.delta : (a.delta > v ? 0 : v - a.delta);
    n = static_cast<size_t>(std::to_chars(digits, digits + sizeof(digits), v).ptr - digits);
    res = DeltaResult::ok;
    out->value = v;
    out->exptime = cur->exptime;
    ch.counts = a.incr ? store::kCountIncrHit : store::kCountDecrHit;
    ch.compose.emplace(write_digits);
    if (a.touch) ch.exptime = a.exptime;
    if (n <= cur->value.size()) {
      pad_to = cur->value.size();
      ch.op = Change::Op::edit;  // in place, padded with spaces
      ch.new_cas = true;
      ch.restamp = true;
      return;
    }
    pad_to = n;  // the number grew past the old length: a new item replaces the old one
    ch.op = Change::Op::write;
    ch.value_len = n;
    ch.marks = 0;
    ch.has_ext = false;
  };
  uint64_t cas = 0;
  if (store_.update(worker_, key, hash, {}, decide, &cas) != store::UpdateResult::done)
    return DeltaResult::no_memory;
  if (res == DeltaResult::ok || res == DeltaResult::created) out->cas = cas;
  return res;
}

DeltaResult ItemRules::delta(std::string_view key, uint64_t hash, const DeltaArgs& args,
                             DeltaOut* out, bool count_miss) {
  DeltaResult r = delta_item(key, hash, args, out);
  if (r == DeltaResult::ok) {
    (args.incr ? stats_.incr_hits : stats_.decr_hits).add();
  } else if (r == DeltaResult::not_found && count_miss) {
    (args.incr ? stats_.incr_misses : stats_.decr_misses).add();
  }
  return r;
}

void ItemRules::flush(int64_t exptime) {
  stats_.cmd_flush.add();
  uint32_t delay = 0;
  if (exptime > 0) {
    uint32_t now = common::now_unix();
    uint32_t when = store::Store::absolute_exptime(exptime, now);
    delay = when > now ? when - now : 0;
  }
  store_.flush_all(delay);
}

}  // namespace cachet::dataplane
