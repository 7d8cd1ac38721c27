// Executes meta commands as proto_text.c's process_m*_command do: status code, then the
// requested flags in request order, then the value; q drops the nominal reply (mg: EN; ms,
// md: HD; ma: HD/VA of a change), never an error. mg's T, N and R act in token order.
#include "dataplane/meta_executor.hh"

#include <charconv>

#include "common/clock.hh"
#include "dataplane/format.hh"
#include "dataplane/marks.hh"
#include "dataplane/protocol/replies.hh"

namespace cachet::dataplane {

namespace {

using reply::kCrlf;
using reply::kLongOpaque;
using store::Change;
using store::ItemView;

constexpr std::string_view kNoData{"\r\n", 0};  // empty, followed by "\r\n"

// An item as mg and me see it. A hidden item is absent, except a lease placeholder or a deleted
// value whose lease is live: mg shows those as mg N's placeholder would be, empty with its win
// sent (Z), so that meta clients wait for the lease holder's refill.
struct MetaItem {
  std::string_view key, value;
  uint32_t flags, exptime, atime;
  uint64_t cas;
  bool fetched, stale, win_sent, key_binary, hidden;
};

bool as_meta(const ItemView& v, uint32_t now, int64_t window, MetaItem* m) {
  if (!v.hidden) {
    *m = MetaItem{v.key,  v.value,  v.flags,
                  v.exptime, v.atime, v.cas,
                  v.fetched, (v.marks & marks::kStale) != 0,
                  (v.marks & marks::kWinSent) != 0, (v.marks & marks::kKeyBinary) != 0, false};
    return true;
  }
  if (!marks::live_token(v, now, window)) return false;
  *m = MetaItem{v.key, kNoData, 0, v.exptime, v.atime, v.cas, false, false, true, false, true};
  return true;
}

// memcached's realtime(EXPTIME_TO_POSITIVE_TIME(t)) in the store's absolute form.
uint32_t absolute(int32_t t, uint32_t now) {
  return t == 0 ? 0 : store::Store::absolute_exptime(t, now);
}

// " k<key>", base64 with " b" after it when the key is binary (META_KEY).
void append_key(common::ByteBuf& out, std::string_view key, bool binary) {
  out.append(" k");
  if (!binary) return out.append(key);
  char* p = out.prepare(meta::base64_encoded_size(key.size()));
  out.commit(meta::base64_encode(key, p));
  out.append(" b");
}

// " <char><n>"
void append_flag_num(common::ByteBuf& out, char flag, uint64_t n) {
  out.push_back(' ');
  out.push_back(flag);
  append_dec(out, n);
}

// " t<seconds left>", "-1" for no exptime; memcached's unsigned difference otherwise.
void append_ttl(common::ByteBuf& out, uint32_t exptime, uint32_t now) {
  if (exptime == 0) return out.append(" t-1");
  append_flag_num(out, 't', static_cast<uint32_t>(exptime - now));
}

// The O and k flags, in order: what md, ma and the misses of mg echo.
void append_opaque_key(common::ByteBuf& out, const meta::Request& m) {
  for (size_t i = 0; i < m.nflags; ++i) {
    std::string_view f = m.flags[i];
    if (f[0] == 'O') {
      out.push_back(' ');
      out.append(f);
    } else if (f[0] == 'k') {
      append_key(out, m.key(), m.key_binary);
    }
  }
}

}  // namespace

void MetaExecutor::execute(const text::Request& req, common::ByteBuf& out) {
  meta::Request m;
  meta::parse(req.line, &m);
  if (!m.error.empty()) return out.append(m.error);  // ms: its block is swallowed already
  switch (m.cmd) {
    case meta::Cmd::get: return get(m, out);
    case meta::Cmd::set: return set(m, req, out);
    case meta::Cmd::del: return del(m, out);
    case meta::Cmd::arith: return arith(m, out);
    case meta::Cmd::debug: return debug(m, out);
    case meta::Cmd::noop: return out.append(reply::kMn);
  }
}

void MetaExecutor::get(const meta::Request& m, common::ByteBuf& out) {
  const uint32_t now = common::now_unix();
  const int64_t window = rules_.tunables().lease_window();
  const bool with_value = m.has('v');
  const bool touch = m.has('T');
  const uint32_t ttl = absolute(m.ttl, now), viv_ttl = absolute(m.vivify_ttl, now);
  const uint32_t recache = absolute(m.recache_ttl, now);
  bool long_opaque = false;
  // What rendering an item asks of the store: its exptime after T/N, a win (W) to record and
  // whether the read counts as an access.
  struct Wants {
    uint32_t exptime;
    bool win, bump;
  };
  // Appends the reply for item v (created: made by this request's N); may run more than once.
  auto render = [&](const MetaItem& v, bool created) {
    Wants w{v.exptime, false, !m.has('u')};
    const size_t mark = out.size();
    long_opaque = false;
    if (with_value) {
      out.append("VA ");
      append_dec(out, v.value.size());
    } else {
      out.append("HD");
    }
    bool won = false;
    for (size_t i = 0; i < m.nflags; ++i) {
      std::string_view f = m.flags[i];
      switch (f[0]) {
        case 'T': w.exptime = ttl; break;
        case 'N':
          if (created) {
            w.exptime = viv_ttl;
            won = true;
          }
          break;
        case 'R':  // recache: an item about to expire goes to one client first
          if (!v.win_sent && !created && w.exptime != 0 && w.exptime < recache) won = true;
          break;
        case 's': append_flag_num(out, 's', v.value.size()); break;
        case 't': append_ttl(out, w.exptime, now); break;
        case 'c': append_flag_num(out, 'c', v.cas); break;
        case 'f': append_flag_num(out, 'f', v.flags); break;
        case 'l': append_flag_num(out, 'l', static_cast<uint32_t>(now - v.atime)); break;
        case 'h': out.append(v.fetched ? " h1" : " h0"); break;
        case 'k': append_key(out, v.key, v.key_binary); break;
        case 'O':
          if (i == m.long_opaque) {  // memcached stops here: no win, no access counted
            out.truncate(mark);
            long_opaque = true;
            return Wants{w.exptime, false, false};  // what came before O still applies
          }
          out.push_back(' ');
          out.append(f);
          break;
      }
    }
    if (v.win_sent) out.append(" Z");
    if (v.stale) {
      out.append(" X");
      if (!v.win_sent) won = true;
    }
    if (won) out.append(" W");
    w.win = won;
    out.append(kCrlf);
    if (with_value) out.append(v.value.data(), v.value.size() + 2);
    return w;
  };
  const uint64_t hash = store::Store::hash(m.key());
  bool found = false;
  // A plain read takes no lock; T, a change asked by rendering, or N on a miss take it.
  bool need_lock = touch;
  if (!touch) {
    bool absent = false;
    auto plain = [&](const ItemView& iv) {
      MetaItem v;
      if (!as_meta(iv, now, window, &v)) {
        absent = true;
        return false;
      }
      Wants w = render(v, false);
      return !long_opaque && w.exptime == v.exptime && !w.win;
    };
    const store::ReadArgs args{.bump = !m.has('u'), .count = true, .hidden = true};
    switch (rules_.store().read(rules_.worker(), m.key(), hash, args, out, plain)) {
      case store::ReadResult::hit: found = true; break;
      case store::ReadResult::miss: need_lock = m.has('N'); break;
      case store::ReadResult::declined:
        if (long_opaque) return out.append(kLongOpaque);
        need_lock = !absent || m.has('N');
        break;
    }
  }
  if (need_lock) {
    const size_t mark = out.size();
    bool created = false;
    MetaItem made{};
    auto decide = [&](const ItemView* cur, Change& ch) {
      out.truncate(mark);
      created = found = false;
      MetaItem v;
      if (cur && as_meta(*cur, now, window, &v)) {
        found = true;
        const Wants w = render(v, false);
        if (cur->hidden) return;  // a leased key: shown, never changed by mg
        if (w.exptime != v.exptime || w.win) {
          ch.op = Change::Op::edit;
          ch.exptime = w.exptime;
          if (w.win) ch.marks |= marks::kWinSent;
        }
        ch.bump = ch.fetched = w.bump;
        if (!long_opaque) ch.counts = touch ? store::kCountTouchHit : store::kCountGetHit;
        return;
      }
      if (!m.has('N')) return;
      // Vivify: an empty placeholder, its refill won by this client. Rendered again below,
      // once linked, with its cas.
      found = created = true;
      made = MetaItem{m.key(), kNoData, 0, 0, now, 0, false, false, false, m.key_binary, false};
      const Wants w = render(made, true);
      out.truncate(mark);
      ch.op = Change::Op::write;
      ch.value_len = 0;
      ch.exptime = w.exptime;
      ch.marks = static_cast<uint8_t>((w.win ? marks::kVivified | marks::kWinSent : marks::kVivified) |
                                      (m.key_binary ? marks::kKeyBinary : 0));
      ch.bump = ch.fetched = w.bump;
      if (!long_opaque) ch.counts = store::kCountGetHit;
    };
    uint64_t cas = 0;
    if (rules_.store().update(rules_.worker(), m.key(), hash, {kNoData, false}, decide, &cas) !=
        store::UpdateResult::done) {
      out.truncate(mark);  // memcached: a vivify that cannot allocate is a miss
      found = false;
    } else if (created) {
      made.cas = cas;
      made.exptime = 0;
      const Wants w = render(made, true);
      (void)w;
    }
  }
  if (long_opaque) return out.append(kLongOpaque);
  if (found) {
    if (touch) {
      stats_.cmd_touch.add();
      stats_.touch_hits.add();
    } else {
      stats_.cmd_get.add();
      stats_.get_hits.add();
    }
    return;
  }
  stats_.cmd_get.add();
  stats_.get_misses.add();
  if (m.long_opaque != meta::kNone) return out.append(kLongOpaque);
  if (m.has('q')) return;
  out.append("EN");
  append_opaque_key(out, m);
  out.append(kCrlf);
}

void MetaExecutor::set(const meta::Request& m, const text::Request& req, common::ByteBuf& out) {
  if (req.too_large) {  // memcached drops the old value whatever the mode
    stats_.store_too_large.add();
    rules_.drop(m.key(), store::Store::hash(m.key()));
    return out.append(reply::kTooLarge);
  }
  stats_.cmd_set.add();
  if (req.bad_chunk) return out.append(reply::kBadChunk);
  StoreArgs a{.key_binary = m.key_binary};
  switch (m.mode) {
    case 'E': a.mode = Mode::add; break;
    case 'A': a.mode = Mode::append; break;
    case 'P': a.mode = Mode::prepend; break;
    case 'R': a.mode = Mode::replace; break;
    default: a.mode = Mode::set; break;
  }
  if (m.has('C')) {
    // A cas turns set and replace into cas; append/prepend compare it; add ignores it.
    if (a.mode == Mode::set || a.mode == Mode::replace) a.mode = Mode::cas;
    if (a.mode != Mode::add) a.cas_in = m.cas;
    a.invalidate = a.mode == Mode::cas && m.has('I');
  }
  const uint32_t now = common::now_unix();
  const uint32_t exptime = m.has('T') ? absolute(m.ttl, now) : 0;
  uint64_t cas = 0;
  std::string_view code;
  const uint64_t hash = store::Store::hash(m.key());
  switch (rules_.store_item(m.key(), hash, req.data, m.client_flags, exptime, a, &cas)) {
    case StoreResult::stored:
      if (a.mode == Mode::cas) stats_.cas_hits.add();
      if (m.has('q')) return;
      code = "HD";
      break;
    case StoreResult::not_stored: code = "NS"; break;
    case StoreResult::exists:
      if (a.mode == Mode::cas) stats_.cas_badval.add();
      code = "EX";
      break;
    case StoreResult::not_found:
      stats_.cas_misses.add();
      code = "NF";
      break;
    case StoreResult::too_large:
    case StoreResult::no_memory:
      if (a.mode == Mode::append || a.mode == Mode::prepend) {
        code = "NS";  // memcached: the joined copy did not fit; the item stays
        break;
      }
      rules_.drop(m.key(), hash);
      stats_.store_no_memory.add();
      return out.append(reply::kNoMemory);
  }
  out.append(code);
  for (size_t i = 0; i < m.nflags; ++i) {
    std::string_view f = m.flags[i];
    if (f[0] == 'O') {
      out.push_back(' ');
      out.append(f);
    } else if (f[0] == 'k') {
      append_key(out, m.key(), m.key_binary);
    } else if (f[0] == 'c') {
      append_flag_num(out, 'c', cas);  // 0 unless stored, as memcached
    }
  }
  out.append(kCrlf);
}

void MetaExecutor::del(const meta::Request& m, common::ByteBuf& out) {
  const uint32_t now = common::now_unix();
  DeleteArgs a{.has_cas = m.has('C'),
                          .cas_in = m.cas,
                          .invalidate = m.has('I'),
                          .touch = m.has('T'),
                          .exptime = absolute(m.ttl, now)};
  std::string_view code;
  switch (rules_.delete_item(m.key(), store::Store::hash(m.key()), a)) {
    case DeleteResult::deleted:
      stats_.delete_hits.add();
      [[fallthrough]];
    case DeleteResult::invalidated:
      if (m.has('q')) return;
      code = "HD";
      break;
    case DeleteResult::not_found:
      stats_.delete_misses.add();
      code = "NF";
      break;
    case DeleteResult::exists:
      stats_.delete_misses.add();
      code = "EX";
      break;
  }
  out.append(code);
  append_opaque_key(out, m);
  out.append(kCrlf);
}

void MetaExecutor::arith(const meta::Request& m, common::ByteBuf& out) {
  const uint32_t now = common::now_unix();
  const uint32_t ttl = absolute(m.ttl, now), viv_ttl = absolute(m.vivify_ttl, now);
  DeltaArgs a{.incr = m.mode != 'D' && m.mode != '-',
                         .delta = m.delta,
                         .cas_in = m.has('C') ? m.cas : 0,
                         .vivify = m.has('N'),
                         .initial = m.initial,
                         .key_binary = m.key_binary};
  // T and N set the exptime in token order, as far as memcached gets (a long opaque stops it).
  const size_t stop = m.long_opaque == meta::kNone ? m.nflags : m.long_opaque;
  for (size_t i = 0; i < stop; ++i) {
    if (m.flags[i][0] == 'T') {
      a.touch = true;
      a.exptime = a.vivify_exptime = ttl;
    } else if (m.flags[i][0] == 'N') {
      a.vivify_exptime = viv_ttl;
    }
  }
  DeltaOut o;
  const DeltaResult r = rules_.delta_item(m.key(), store::Store::hash(m.key()), a, &o);
  std::string_view code = "NF";
  switch (r) {
    case DeltaResult::ok:
      (a.incr ? stats_.incr_hits : stats_.decr_hits).add();
      break;
    case DeltaResult::created:
      break;
    case DeltaResult::not_found:
      (a.incr ? stats_.incr_misses : stats_.decr_misses).add();
      break;
    case DeltaResult::exists:
      code = "EX";
      break;
    case DeltaResult::non_numeric:
      return out.append(reply::kNonNumeric);
    case DeltaResult::no_memory:
      return out.append(reply::kDeltaNoMemory);
  }
  if (m.long_opaque != meta::kNone) return out.append(kLongOpaque);
  const bool changed = r == DeltaResult::ok || r == DeltaResult::created;
  if (!changed) {
    out.append(code);
    append_opaque_key(out, m);
    return out.append(kCrlf);
  }
  if (r == DeltaResult::ok && m.has('q')) return;  // a created item is still told
  char digits[24];
  const size_t n = static_cast<size_t>(std::to_chars(digits, digits + 24, o.value).ptr - digits);
  if (m.has('v')) {
    out.append("VA ");
    append_dec(out, n);
  } else {
    out.append("HD");
  }
  uint32_t exptime = o.exptime;  // as the item had it when each t is reached
  for (size_t i = 0; i < m.nflags; ++i) {
    std::string_view f = m.flags[i];
    switch (f[0]) {
      case 'c': append_flag_num(out, 'c', o.cas); break;
      case 't': append_ttl(out, exptime, now); break;
      case 'T': exptime = ttl; break;
      case 'N':
        if (r == DeltaResult::created) exptime = viv_ttl;
        break;
      case 'O':
        out.push_back(' ');
        out.append(f);
        break;
      case 'k': append_key(out, m.key(), m.key_binary); break;
    }
  }
  out.append(kCrlf);
  if (m.has('v')) {
    out.append(digits, n);
    out.append(kCrlf);
  }
}

void MetaExecutor::debug(const meta::Request& m, common::ByteBuf& out) {
  const uint32_t now = common::now_unix();
  auto line = [&](const ItemView& v) {
    // "ME <key> exp=<-1 | now - exptime> la=<now - atime> cas=<cas> fetch=<yes|no>
    //  cls=<class> size=<bytes>", the key re-encoded when it was stored binary.
    out.append("ME ");
    if (v.marks & marks::kKeyBinary) {
      char* p = out.prepare(meta::base64_encoded_size(v.key.size()));
      out.commit(meta::base64_encode(v.key, p));
    } else {
      out.append(v.key);
    }
    out.append(" exp=");
    if (v.exptime == 0) {
      out.append("-1");
    } else {
      append_dec_signed(out, static_cast<int32_t>(now - v.exptime));
    }
    out.append(" la=");
    append_dec(out, static_cast<uint32_t>(now - v.atime));
    out.append(" cas=");
    append_dec(out, v.cas);
    out.append(v.fetched ? " fetch=yes cls=" : " fetch=no cls=");
    append_dec(out, v.clsid);
    out.append(" size=");
    append_dec(out, v.total);
    out.append(kCrlf);
    return true;
  };
  const store::ReadArgs args{.bump = false, .count = false};
  if (rules_.store().read(rules_.worker(), m.key(), store::Store::hash(m.key()), args, out,
                          line) != store::ReadResult::hit) {
    out.append(reply::kEn);
  }
}

}  // namespace cachet::dataplane
