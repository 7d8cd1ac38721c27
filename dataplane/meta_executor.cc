// Executes meta commands as proto_text.c's process_m*_command do: status code, then the
// requested flags in request order, then the value; q drops the nominal reply (mg: EN; ms,
// md: HD; ma: HD/VA of a change), never an error. mg's T, N and R act in token order.
#include "dataplane/meta_executor.hh"

#include <charconv>

#include "common/clock.hh"
#include "dataplane/format.hh"

namespace cachet::dataplane {

namespace {

constexpr std::string_view kLongOpaque = "CLIENT_ERROR opaque token too long\r\n";
constexpr std::string_view kCrlf = "\r\n";

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
    case meta::Cmd::noop: return out.append("MN\r\n");
  }
}

void MetaExecutor::get(const meta::Request& m, common::ByteBuf& out) {
  const uint32_t now = common::now_unix();
  const bool with_value = m.has('v');
  const uint32_t ttl = absolute(m.ttl, now), viv_ttl = absolute(m.vivify_ttl, now);
  const uint32_t recache = absolute(m.recache_ttl, now);
  store::MetaGetArgs args{.bump = !m.has('u'), .touch = m.has('T'), .vivify = m.has('N')};
  bool long_opaque = false;
  auto reply = [&](store::MetaView& v) {  // may run twice: see Store::meta_get
    const size_t mark = out.size();
    long_opaque = false;
    if (with_value) {
      out.append("VA ");
      append_dec(out, v.item.value.size());
    } else {
      out.append("HD");
    }
    bool won = false;
    for (size_t i = 0; i < m.nflags; ++i) {
      std::string_view f = m.flags[i];
      switch (f[0]) {
        case 'T': v.exptime = ttl; break;
        case 'N':
          if (v.created) {
            v.exptime = viv_ttl;
            won = true;
          }
          break;
        case 'R':  // recache: an item about to expire goes to one client first
          if (!v.win_sent && !v.created && v.exptime != 0 && v.exptime < recache) won = true;
          break;
        case 's': append_flag_num(out, 's', v.item.value.size()); break;
        case 't': append_ttl(out, v.exptime, now); break;
        case 'c': append_flag_num(out, 'c', v.item.cas); break;
        case 'f': append_flag_num(out, 'f', v.item.flags); break;
        case 'l': append_flag_num(out, 'l', static_cast<uint32_t>(now - v.atime)); break;
        case 'h': out.append(v.fetched ? " h1" : " h0"); break;
        case 'k': append_key(out, v.item.key, v.key_binary); break;
        case 'O':
          if (i == m.long_opaque) {  // memcached stops here: no win, no access counted
            out.truncate(mark);
            long_opaque = true;
            v.win = false;
            v.bump = false;
            return;
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
    v.win = won;
    out.append(kCrlf);
    if (with_value) out.append(v.item.value.data(), v.item.value.size() + 2);
  };
  const bool hit = store_.meta_get(worker_, m.key(), args, out, reply);
  if (long_opaque) return out.append(kLongOpaque);
  if (hit) {
    if (args.touch) {
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
    store_.remove(worker_, m.key());
    return out.append("SERVER_ERROR object too large for cache\r\n");
  }
  stats_.cmd_set.add();
  if (req.bad_chunk) return out.append("CLIENT_ERROR bad data chunk\r\n");
  store::MetaStoreArgs a{.key_binary = m.key_binary};
  switch (m.mode) {
    case 'E': a.mode = store::Mode::add; break;
    case 'A': a.mode = store::Mode::append; break;
    case 'P': a.mode = store::Mode::prepend; break;
    case 'R': a.mode = store::Mode::replace; break;
    default: a.mode = store::Mode::set; break;
  }
  if (m.has('C')) {
    // A cas turns set and replace into cas; append/prepend compare it; add ignores it.
    if (a.mode == store::Mode::set || a.mode == store::Mode::replace) a.mode = store::Mode::cas;
    if (a.mode != store::Mode::add) a.cas_in = m.cas;
    a.invalidate = a.mode == store::Mode::cas && m.has('I');
  }
  const uint32_t now = common::now_unix();
  const uint32_t exptime = m.has('T') ? absolute(m.ttl, now) : 0;
  uint64_t cas = 0;
  std::string_view code;
  switch (store_.meta_store(worker_, m.key(), req.data, m.client_flags, exptime, a, &cas)) {
    case store::StoreResult::stored:
      if (a.mode == store::Mode::cas) stats_.cas_hits.add();
      if (m.has('q')) return;
      code = "HD";
      break;
    case store::StoreResult::not_stored: code = "NS"; break;
    case store::StoreResult::exists:
      if (a.mode == store::Mode::cas) stats_.cas_badval.add();
      code = "EX";
      break;
    case store::StoreResult::not_found:
      stats_.cas_misses.add();
      code = "NF";
      break;
    case store::StoreResult::too_large:
    case store::StoreResult::no_memory:
      if (a.mode == store::Mode::append || a.mode == store::Mode::prepend) {
        code = "NS";  // memcached: the joined copy did not fit; the item stays
        break;
      }
      store_.remove(worker_, m.key());
      stats_.store_no_memory.add();
      return out.append("SERVER_ERROR out of memory storing object\r\n");
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
  store::MetaDeleteArgs a{.has_cas = m.has('C'),
                          .cas_in = m.cas,
                          .invalidate = m.has('I'),
                          .touch = m.has('T'),
                          .exptime = absolute(m.ttl, now)};
  std::string_view code;
  switch (store_.meta_delete(worker_, m.key(), a)) {
    case store::MetaDeleteResult::deleted:
      stats_.delete_hits.add();
      [[fallthrough]];
    case store::MetaDeleteResult::invalidated:
      if (m.has('q')) return;
      code = "HD";
      break;
    case store::MetaDeleteResult::not_found:
      stats_.delete_misses.add();
      code = "NF";
      break;
    case store::MetaDeleteResult::exists:
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
  store::MetaDeltaArgs a{.incr = m.mode != 'D' && m.mode != '-',
                         .delta = m.delta,
                         .cas_in = m.has('C') ? m.cas : 0,
                         .vivify = m.has('N'),
                         .initial = m.initial};
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
  store::MetaDeltaOut o;
  const store::MetaDeltaResult r = store_.meta_delta(worker_, m.key(), a, &o);
  std::string_view code = "NF";
  switch (r) {
    case store::MetaDeltaResult::ok:
      (a.incr ? stats_.incr_hits : stats_.decr_hits).add();
      break;
    case store::MetaDeltaResult::created:
      break;
    case store::MetaDeltaResult::not_found:
      (a.incr ? stats_.incr_misses : stats_.decr_misses).add();
      break;
    case store::MetaDeltaResult::exists:
      code = "EX";
      break;
    case store::MetaDeltaResult::non_numeric:
      return out.append("CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    case store::MetaDeltaResult::no_memory:
      return out.append("SERVER_ERROR out of memory\r\n");
  }
  if (m.long_opaque != meta::kNone) return out.append(kLongOpaque);
  const bool changed = r == store::MetaDeltaResult::ok || r == store::MetaDeltaResult::created;
  if (!changed) {
    out.append(code);
    append_opaque_key(out, m);
    return out.append(kCrlf);
  }
  if (r == store::MetaDeltaResult::ok && m.has('q')) return;  // a created item is still told
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
        if (r == store::MetaDeltaResult::created) exptime = viv_ttl;
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
  auto line = [&](store::MetaView& v) {
    // "ME <key> exp=<-1 | now - exptime> la=<now - atime> cas=<cas> fetch=<yes|no>
    //  cls=<class> size=<bytes>", the key re-encoded when it was stored binary.
    out.append("ME ");
    if (v.key_binary) {
      char* p = out.prepare(meta::base64_encoded_size(v.item.key.size()));
      out.commit(meta::base64_encode(v.item.key, p));
    } else {
      out.append(v.item.key);
    }
    out.append(" exp=");
    if (v.item.exptime == 0) {
      out.append("-1");
    } else {
      append_dec_signed(out, static_cast<int32_t>(now - v.item.exptime));
    }
    out.append(" la=");
    append_dec(out, static_cast<uint32_t>(now - v.atime));
    out.append(" cas=");
    append_dec(out, v.item.cas);
    out.append(v.fetched ? " fetch=yes cls=" : " fetch=no cls=");
    append_dec(out, v.clsid);
    out.append(" size=");
    append_dec(out, v.total);
    out.append(kCrlf);
  };
  if (!store_.meta_get(worker_, m.key(), {.bump = false, .count = false}, out, line)) {
    out.append("EN\r\n");
  }
}

}  // namespace cachet::dataplane
