// mcrouter's lease dialect as store decisions (see lease_executor.hh and marks.hh).
#include "dataplane/lease_executor.hh"

#include "common/clock.hh"
#include "dataplane/format.hh"
#include "dataplane/marks.hh"
#include "dataplane/protocol/replies.hh"

namespace cachet::dataplane {

using store::Change;
using store::ItemView;

namespace {

constexpr std::string_view kNoData{"\r\n", 0};  // empty, followed by "\r\n" (append_value)
constexpr uint64_t kHotMiss = 1;

// A value lease-get serves as a hit: visible, not stale, not mg N's placeholder being refilled.
bool plain_hit(const ItemView& v) {
  if (v.hidden || (v.marks & marks::kStale)) return false;
  return !((v.marks & marks::kVivified) && (v.marks & marks::kWinSent));
}

}  // namespace

void LeaseExecutor::execute(const text::Request& req, uint64_t hash, common::ByteBuf& out) {
  switch (req.cmd) {
    case text::Cmd::lease_get: return lease_get(req, hash, out);
    case text::Cmd::lease_set: return lease_set(req, hash, out);
    default: return metaget(req, hash, out);
  }
}

void LeaseExecutor::lease_get(const text::Request& req, uint64_t hash, common::ByteBuf& out) {
  WorkerStats& st = rules_.stats();
  st.cmd_lease_get.add();
  auto value = [&](const ItemView& v) {
    append_value(out, "VALUE", v.key, 0, v.flags, v.value, false, 0);
    return true;
  };
  if (!rules_.tunables().leases()) {  // as get, which is what mcrouter sees of a server
    rules_.get(req.key, hash, out, value);  // without leases
    return out.append(reply::kEnd);
  }
  // A plain hit needs no lock.
  auto hit_only = [&](const ItemView& v) { return plain_hit(v) && value(v); };
  if (rules_.store().read(rules_.worker(), req.key, hash, {}, out, hit_only) ==
      store::ReadResult::hit) {
    st.cmd_get.add();
    st.get_hits.add();
    return out.append(reply::kEnd);
  }

  const uint32_t now = common::now_unix();
  const int64_t window = rules_.tunables().lease_window();
  const size_t mark = out.size();
  enum class Kind : uint8_t { hit, token, hot } kind = Kind::hit;
  bool stale = false;
  auto decide = [&](const ItemView* cur, Change& ch) {
    out.truncate(mark);  // may run twice (after an allocation): only the last answer stays
    if (cur && plain_hit(*cur)) {  // filled since the lock-free look
      kind = Kind::hit;
      value(*cur);
      ch.bump = ch.fetched = true;
      ch.counts = store::kCountGetHit;
      return;
    }
    stale = cur && marks::stale_value(*cur, now);
    const std::string_view data = stale ? cur->value : kNoData;
    const uint32_t flags = stale ? cur->flags : 0;
    if (cur && marks::refill_in_flight(*cur, now, window)) {
      kind = Kind::hot;
      return append_value(out, "LVALUE", req.key, kHotMiss, flags, data, false, 0);
    }
    kind = Kind::token;
    const uint64_t token = tokens_.next();
    append_value(out, "LVALUE", req.key, token, flags, data, false, 0);
    ch.has_ext = true;
    ch.ext = marks::ext_of(cur);
    ch.ext.token = token;
    ch.ext.token_time = now;
    if (!cur) {  // a placeholder that holds the lease: hidden, no value
      ch.op = Change::Op::write;
      ch.hidden = true;
      ch.value_len = 0;
      ch.exptime = marks::hidden_lifetime(ch.ext, window);
      return;
    }
    ch.op = Change::Op::edit;
    ch.marks |= marks::kWinSent;
    if (cur->hidden) ch.exptime = std::max(cur->exptime, marks::hidden_lifetime(ch.ext, window));
  };
  if (rules_.store().update(rules_.worker(), req.key, hash, {kNoData, false}, decide) !=
      store::UpdateResult::done) {
    out.truncate(mark);
    st.cmd_get.add();
    st.get_misses.add();
    return out.append(reply::kNoMemory);
  }
  out.append(reply::kEnd);
  st.cmd_get.add();
  if (kind == Kind::hit) {
    st.get_hits.add();
    return;
  }
  st.get_misses.add();
  (kind == Kind::token ? st.lease_tokens : st.lease_hot_misses).add();
  if (stale) st.lease_stale_served.add();
}

void LeaseExecutor::lease_set(const text::Request& req, uint64_t hash, common::ByteBuf& out) {
  WorkerStats& st = rules_.stats();
  st.cmd_lease_set.add();
  auto reply = [&](std::string_view line) {
    if (!req.noreply) out.append(line);
  };
  if (req.too_large) {  // as a set: the key's old value (and its lease) goes
    st.store_too_large.add();
    rules_.drop(req.key, hash);
    return reply(reply::kTooLarge);
  }
  st.cmd_set.add();
  if (req.bad_chunk) return reply(reply::kBadChunk);
  const uint32_t exptime = store_exptime(req.exptime);
  if (!rules_.tunables().leases()) {  // no leases: a set
    switch (rules_.store_item(req.key, hash, req.data, req.flags, exptime, {}, nullptr)) {
      case StoreResult::stored: return reply(reply::kStored);
      case StoreResult::too_large: return reply(reply::kTooLarge);
      default: return reply(reply::kNoMemory);
    }
  }
  const uint32_t now = common::now_unix();
  const int64_t window = rules_.tunables().lease_window();
  const int64_t stale_window = rules_.tunables().stale_window();
  enum class Kind : uint8_t { stored, stale, refused, held_off } kind = Kind::refused;
  auto decide = [&](const ItemView* cur, Change& ch) {
    kind = Kind::refused;
    if (!cur) return;
    if (marks::holdoff_active(cur, now)) {
      kind = Kind::held_off;
      return;
    }
    const uint64_t live = marks::live_token(*cur, now, window);
    ch.op = Change::Op::write;
    ch.value_len = req.data.size();
    ch.flags = req.flags;
    ch.counts = store::kCountSet;
    if (live != 0 && live == req.number) {  // the lease holder: a normal item, the lease ends
      kind = Kind::stored;
      ch.exptime = exptime;
      ch.marks = 0;
      ch.hidden = false;
      ch.has_ext = false;
      return;
    }
    if (!(live || marks::stale_value(*cur, now) || marks::refill_in_flight(*cur, now, window))) {
      ch.op = Change::Op::keep;  // a fresh value that nobody leased
      ch.counts = 0;
      return;
    }
    kind = Kind::stale;  // stored, but still stale; a live lease stays live
    if (cur->hidden) {
      ch.marks = marks::kDeleted;
      ch.has_ext = true;
      ch.ext = marks::ext_of(cur);
      ch.ext.stale_until = std::max<uint32_t>(ch.ext.stale_until,
                                              now + static_cast<uint32_t>(stale_window));
      ch.exptime = marks::hidden_lifetime(ch.ext, window);
    } else {
      ch.marks |= marks::kStale;  // keeps its exptime, win state and lease
    }
  };
  switch (rules_.store().update(rules_.worker(), req.key, hash, {req.data, true}, decide)) {
    case store::UpdateResult::done: break;
    case store::UpdateResult::too_large:
      st.store_too_large.add();
      return reply(reply::kTooLarge);
    case store::UpdateResult::no_memory:
      st.store_no_memory.add();
      return reply(reply::kNoMemory);
  }
  switch (kind) {
    case Kind::stored: return reply(reply::kStored);
    case Kind::stale:
      st.lease_set_stale.add();
      return reply(reply::kStaleStored);
    case Kind::held_off:
      st.holdoff_refused.add();
      [[fallthrough]];
    case Kind::refused:
      st.lease_set_refused.add();
      return reply(reply::kNotStored);
  }
}

void LeaseExecutor::metaget(const text::Request& req, uint64_t hash, common::ByteBuf& out) {
  const uint32_t now = common::now_unix();
  const int64_t transient = rules_.tunables().transient_ttl();
  auto meta = [&](const ItemView& v) {
    out.append("META ");
    out.append(v.key);
    out.append(" age: ");
    append_dec_signed(out, int64_t{now} - v.time);
    out.append("; exptime: ");
    append_dec_signed(out, v.exptime == 0 ? -1 : int64_t{v.exptime} - now);
    out.append("; from: unknown; is_transient: ");
    const bool is_transient = v.exptime != 0 && int64_t{v.exptime} - v.time < transient;
    out.append(is_transient ? "1\r\n" : "0\r\n");
    return true;
  };
  rules_.store().read(rules_.worker(), req.key, hash, {.bump = false, .count = false}, out, meta);
  out.append(reply::kEnd);
}

}  // namespace cachet::dataplane
