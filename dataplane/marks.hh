// What the protocol rules keep on an item beyond memcached's fields: the meaning of the store's
// eight protocol marks (Item::marks), of its hidden bit and of its ItemExt, and the predicates
// every rule (classic, meta, lease) reads them through. One place, so that the meta protocol's
// anti-stampede states and mcrouter's leases are one mechanism:
//   a lease token issued  = meta's W (win)  -> kWinSent, with the token in the ext
//   a hot miss            = meta's Z        -> kWinSent already set (or a live token)
//   a stale value         = meta's X        -> kStale (md I) or a hidden kDeleted value
#pragma once

#include <algorithm>
#include <cstdint>

#include "store/store.hh"

namespace cachet::dataplane::marks {

// Item::marks bits.
inline constexpr uint8_t kStale = 1;      // invalidated by md I / ms I: served to mg marked X
inline constexpr uint8_t kWinSent = 2;    // a client was told to refill it (mg W or a lease)
inline constexpr uint8_t kKeyBinary = 4;  // stored by ms with a base64 key: mg k echoes it so
inline constexpr uint8_t kVivified = 8;   // made empty by mg N as a placeholder to refill
inline constexpr uint8_t kDeleted = 16;   // hidden: a deleted value kept for stale reads

// Hidden items (store::ItemView::hidden) are absent to every classic command and to mg/ms/md/
// ma; they are one of:
//   - a deleted value (kDeleted): readable as stale by lease-get until stale_until();
//   - a lease placeholder: no value, a live token in the ext (lease-get on a miss);
//   - a hold-off tombstone: no value, holdoff_until in the ext (delete <key> <seconds>).
// A hidden item lives (its exptime) until the last of its stale, lease and hold-off times.

// Until when a hidden deleted value may be served as stale (0: never).
inline uint32_t stale_until(const store::ItemView& v) {
  if (!v.hidden || !(v.marks & kDeleted)) return 0;
  return v.ext ? v.ext->stale_until : v.exptime;
}

// A value lease-get may hand out as stale: md I's X, or a deleted value inside its window.
inline bool stale_value(const store::ItemView& v, uint32_t now) {
  return v.hidden ? now < stale_until(v) : (v.marks & kStale) != 0;
}

// The key's lease token, while its window lasts (0 otherwise).
inline uint64_t live_token(const store::ItemView& v, uint32_t now, int64_t window) {
  if (!v.ext || v.ext->token == 0) return 0;
  return int64_t{now} < int64_t{v.ext->token_time} + window ? v.ext->token : 0;
}

// Another client is refilling the key: a live lease token, or a meta win sent without one
// (mg W on a stale item, mg N's placeholder), which lasts as long as the item.
inline bool refill_in_flight(const store::ItemView& v, uint32_t now, int64_t window) {
  if (live_token(v, now, window)) return true;
  return (v.marks & kWinSent) && !(v.ext && v.ext->token != 0);
}

// Fills of the key (add, lease-set) are refused until this time.
inline bool holdoff_active(const store::ItemView* v, uint32_t now) {
  return v && v->ext && v->ext->holdoff_until > now;
}

// A hidden item's lifetime: the last of its stale, lease and hold-off times.
inline uint32_t hidden_lifetime(const store::ItemExt& e, int64_t lease_window) {
  const uint32_t lease_end =
      e.token ? static_cast<uint32_t>(std::min<int64_t>(e.token_time + lease_window, UINT32_MAX))
              : 0;
  return std::max({e.stale_until, e.holdoff_until, lease_end, 1u});
}

// The ext of item v, or a fresh one for an item without, with stale_until carried over from a
// hidden deleted value's exptime.
inline store::ItemExt ext_of(const store::ItemView* v) {
  if (!v) return store::ItemExt{};
  if (v->ext) return *v->ext;
  store::ItemExt e{};
  e.stale_until = stale_until(*v);
  return e;
}

}  // namespace cachet::dataplane::marks
