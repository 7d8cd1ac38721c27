// The text protocol parser: line framing, memcached's tokenizer and number rules, and the
// per-command argument checks of proto_text.c (process_command_ascii and its helpers).
#include "dataplane/protocol/text_parser.hh"

#include <climits>
#include <cstring>

#include "dataplane/protocol/meta_parser.hh"
#include "dataplane/protocol/replies.hh"

namespace cachet::dataplane::text {

namespace {

using namespace reply;

// isspace() in the C locale.
inline bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// What strtoull sees in a token: optional whitespace and sign, then digits.
struct Scan {
  bool converted = false;  // at least one digit (else strtol's endptr == str)
  bool overflow = false;   // magnitude above 2^64 - 1 (ERANGE)
  bool neg = false;
  uint64_t mag = 0;
  size_t end = 0;  // index just past the digits
};

Scan scan_number(std::string_view s) {
  Scan r;
  size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    r.neg = s[i] == '-';
    ++i;
  }
  size_t first = i;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    unsigned d = static_cast<unsigned>(s[i] - '0');
    if (r.mag > (UINT64_MAX - d) / 10) r.overflow = true;
    r.mag = r.mag * 10 + d;
  }
  r.converted = i != first;
  r.end = i;
  return r;
}

// memcached accepts a number only if it ends the token or is followed by whitespace.
inline bool ends_well(std::string_view s, size_t end) {
  return end == s.size() || is_space(s[end]);
}

inline bool is_noreply(std::string_view tok) { return tok == "noreply"; }

struct Line {
  std::string_view text;
  std::string_view tok[kMaxTokens];
  std::string_view rest;
  size_t ntok = 0;  // memcached's count: tokens + 1
};

void set_error(Request& q, std::string_view msg) { q.error = msg; }

// get, gets, gat, gats, bget (WANT_TOKENS_MIN(ntokens, 3) already checked).
void parse_get(Request& q, Cmd cmd, const Line& l) {
  q.cmd = cmd;
  size_t last_fixed = 0;  // index of the token before the keys
  if (cmd == Cmd::gat || cmd == Cmd::gats) {
    if (!safe_strtol(l.tok[1], &q.exptime)) return set_error(q, kBadExptime);
    last_fixed = 1;
  }
  const char* from = l.tok[last_fixed].data() + l.tok[last_fixed].size();
  const char* to = l.text.data() + l.text.size();
  q.keys = std::string_view(from, static_cast<size_t>(to - from));
}

// set, add, replace, append, prepend, cas (token count already checked).
void parse_update(ParseResult& r, Cmd cmd, const Line& l, std::string_view in,
                  ValueMax value_max) {
  Request& q = r.req;
  q.cmd = cmd;
  q.noreply = is_noreply(l.tok[l.ntok - 2]);
  if (l.tok[1].size() > kKeyMax) return set_error(q, kBadFormat);
  q.key = l.tok[1];
  // lease-set <key> <token> <flags> <exptime> <bytes>: the token comes before the flags.
  const size_t f = cmd == Cmd::lease_set ? 3 : 2;
  if (cmd == Cmd::lease_set) {
    std::string_view t = l.tok[2];
    if (t.empty() || t[0] == '-' || t[0] == '+' || !safe_strtoull(t, &q.number))
      return set_error(q, kBadFormat);
  }
  int32_t vlen = 0;
  if (!(safe_strtoul(l.tok[f], &q.flags) && safe_strtol(l.tok[f + 1], &q.exptime) &&
        safe_strtol(l.tok[f + 2], &vlen))) {
    return set_error(q, kBadFormat);
  }
  if (cmd == Cmd::cas && !safe_strtoull(l.tok[5], &q.number)) return set_error(q, kBadFormat);
  if (vlen < 0 || vlen > INT_MAX - 2) return set_error(q, kBadFormat);
  size_t block = static_cast<size_t>(vlen) + 2;
  if (static_cast<size_t>(vlen) > value_max(q.key.size())) {
    q.too_large = true;
    r.swallow = block;
    return;
  }
  size_t need = r.consumed + block;
  if (in.size() < need) {
    r.status = Status::need_more;
    r.need = need;
    r.consumed = 0;
    return;
  }
  q.data = in.substr(r.consumed, static_cast<size_t>(vlen));
  q.bad_chunk = in[need - 2] != '\r' || in[need - 1] != '\n';
  r.consumed = need;
  // Tokens 0 and 1 are never issued (1 is the hot-miss answer): the block is read, then refused.
  if (cmd == Cmd::lease_set && q.number <= 1 && !q.bad_chunk) set_error(q, kBadLeaseToken);
}

void parse_key_cmd(Request& q, Cmd cmd, const Line& l) {
  q.cmd = cmd;
  q.noreply = is_noreply(l.tok[l.ntok - 2]);
  if (l.tok[1].size() > kKeyMax) return set_error(q, kBadFormat);
  q.key = l.tok[1];
  if (cmd == Cmd::touch) {
    if (!safe_strtol(l.tok[2], &q.exptime)) return set_error(q, kBadExptime);
  } else if (!safe_strtoull(l.tok[2], &q.number)) {
    return set_error(q, kBadDeltaArg);
  }
}

// delete <key> [<holdoff>] [noreply]: memcached accepts a hold-off of 0 only; a positive one
// (the paper's delete hold-off, mcrouter's `delete k N`) goes to `number`. Anything else is
// memcached's usage line.
void parse_delete(Request& q, const Line& l) {
  q.cmd = Cmd::del;
  if (l.ntok > 3) {
    bool sets_noreply = is_noreply(l.tok[l.ntok - 2]);
    q.noreply = sets_noreply;
    bool has_time = l.ntok == 5 || (l.ntok == 4 && !sets_noreply);
    uint64_t holdoff = 0;
    bool valid = l.ntok == 4 || (l.ntok == 5 && sets_noreply);
    if (valid && has_time) {
      std::string_view t = l.tok[2];
      valid = !t.empty() && t[0] != '-' && t[0] != '+' && safe_strtoull(t, &holdoff);
    }
    if (!valid) return set_error(q, kDeleteUsage);
    q.number = holdoff;
  }
  if (l.tok[1].size() > kKeyMax) return set_error(q, kBadFormat);
  q.key = l.tok[1];
}

// lease-get <key> and metaget <key> (mcrouter's dialect): exactly one key.
void parse_one_key(Request& q, Cmd cmd, const Line& l) {
  q.cmd = cmd;
  if (l.ntok != 3 || !l.rest.empty() || l.tok[1].size() > kKeyMax) return set_error(q, kBadFormat);
  q.key = l.tok[1];
}

void parse_flush(Request& q, const Line& l) {
  q.cmd = Cmd::flush_all;
  q.noreply = is_noreply(l.tok[l.ntok - 2]);
  if (l.ntok != (q.noreply ? 3u : 2u) && !safe_strtol(l.tok[1], &q.exptime)) {
    set_error(q, kBadExptime);
  }
}

void parse_verbosity(Request& q, const Line& l) {
  q.cmd = Cmd::verbosity;
  q.noreply = is_noreply(l.tok[l.ntok - 2]);
  uint32_t level = 0;
  if (!safe_strtoul(l.tok[1], &level)) return set_error(q, kBadFormat);
  q.number = level;
}

void parse_memlimit(Request& q, const Line& l) {
  q.cmd = Cmd::cache_memlimit;
  q.noreply = is_noreply(l.tok[l.ntok - 2]);
  uint32_t mb = 0;
  if (!safe_strtoul(l.tok[1], &mb)) return set_error(q, kError);
  q.number = mb;
}

void parse_stats(Request& q, const Line& l) {
  q.cmd = Cmd::stats;
  q.nargs = static_cast<uint8_t>(l.ntok - 2);
  for (size_t i = 0; i < 3 && i + 1 < l.ntok - 1; ++i) q.args[i] = l.tok[i + 1];
}

// slabs: the tokens as for stats; `slabs automove` honours noreply (set_noreply_maybe).
void parse_slabs(Request& q, const Line& l) {
  parse_stats(q, l);
  q.cmd = Cmd::slabs;
  if (l.ntok >= 4 && l.tok[1] == "automove") q.noreply = is_noreply(l.tok[l.ntok - 2]);
}

inline bool tokens_in(size_t n, size_t lo, size_t hi) { return n >= lo && n <= hi; }

// process_command_ascii's dispatch, same order and token-count checks.
void dispatch(ParseResult& r, const Line& l, std::string_view in, ValueMax value_max) {
  Request& q = r.req;
  const size_t n = l.ntok;
  q.cmd = Cmd::error;
  if (n < 2 || l.tok[0].size() < 2) return set_error(q, kError);
  std::string_view c = l.tok[0];
  auto want = [&](bool ok) {
    if (!ok) set_error(q, kError);
    return ok;
  };
  switch (c[0]) {
    case 'm':
      if (c.size() == 2) {
        if (c[1] == 'n') {
          q.cmd = Cmd::mn;
          return;
        }
        if (std::string_view("gsdae").find(c[1]) == std::string_view::npos) {
          return set_error(q, kError);
        }
        return meta::frame(r, l.text, in, value_max);
      }
      break;
    case 'g':
      if (!want(n >= 3)) return;
      if (c == "get") return parse_get(q, Cmd::get, l);
      if (c == "gets") return parse_get(q, Cmd::gets, l);
      if (c == "gat") return parse_get(q, Cmd::gat, l);
      if (c == "gats") return parse_get(q, Cmd::gats, l);
      return set_error(q, kError);
    case 's':
      if (c == "set") {
        if (want(n == 6 || n == 7)) parse_update(r, Cmd::set, l, in, value_max);
        return;
      }
      if (c == "stats") return parse_stats(q, l);
      if (c == "shutdown") {
        q.cmd = Cmd::shutdown;
        return;
      }
      if (c == "slabs") return parse_slabs(q, l);
      return set_error(q, kError);
    case 'a':
      if (c == "add" || c == "append") {
        if (want(n == 6 || n == 7)) {
          parse_update(r, c == "add" ? Cmd::add : Cmd::append, l, in, value_max);
        }
        return;
      }
      return set_error(q, kError);
    case 'c':
      if (c == "cas") {
        if (want(n == 7 || n == 8)) parse_update(r, Cmd::cas, l, in, value_max);
        return;
      }
      if (c == "cache_memlimit") {
        if (want(n == 3 || n == 4)) parse_memlimit(q, l);
        return;
      }
      return set_error(q, kError);
    case 'i':
      if (c == "incr" && want(n == 4 || n == 5)) return parse_key_cmd(q, Cmd::incr, l);
      return set_error(q, kError);
    case 'd':
      if (c == "delete") {
        if (want(tokens_in(n, 3, 5))) parse_delete(q, l);
        return;
      }
      if (c == "decr" && want(n == 4 || n == 5)) return parse_key_cmd(q, Cmd::decr, l);
      return set_error(q, kError);
    case 't':
      if (c == "touch" && want(n == 4 || n == 5)) return parse_key_cmd(q, Cmd::touch, l);
      if (c == "tunable") {
        q.cmd = Cmd::tunable;
        if (n != 3 && n != 4) return set_error(q, kError);
        q.args[0] = l.tok[1];
        q.args[1] = n == 4 ? l.tok[2] : std::string_view();
        q.nargs = static_cast<uint8_t>(n - 2);
        return;
      }
      return set_error(q, kError);
    case 'l':
      if (c == "lease-get") {
        if (want(n >= 3)) parse_one_key(q, Cmd::lease_get, l);
        return;
      }
      if (c == "lease-set") {
        if (want(n == 7 || n == 8)) parse_update(r, Cmd::lease_set, l, in, value_max);
        return;
      }
      break;
    default:
      break;
  }
  if (c == "replace" || c == "prepend") {
    if (want(n == 6 || n == 7)) {
      parse_update(r, c == "replace" ? Cmd::replace : Cmd::prepend, l, in, value_max);
    }
    return;
  }
  if (c == "bget") {
    if (want(n >= 3)) parse_get(q, Cmd::get, l);
    return;
  }
  if (c == "metaget") {
    if (want(n >= 3)) parse_one_key(q, Cmd::metaget, l);
    return;
  }
  if (c == "flush_all") {
    if (want(tokens_in(n, 2, 4))) parse_flush(q, l);
    return;
  }
  if (c == "version") {
    q.cmd = Cmd::version;
    return;
  }
  if (c == "quit") {
    q.cmd = Cmd::quit;
    return;
  }
  if (c == "verbosity") {
    if (want(n == 3 || n == 4)) parse_verbosity(q, l);
    return;
  }
  if (c == "lru_crawler" || c == "watch" || c == "lru") return set_error(q, kError);
  // memcached drops connections that speak HTTP at it.
  if (l.tok[n - 2].substr(0, 5) == "HTTP/") {
    r.status = Status::close;
    return;
  }
  set_error(q, kError);
}

}  // namespace

bool safe_strtoul(std::string_view tok, uint32_t* out) {
  Scan s = scan_number(tok);
  if (!s.converted || s.overflow || !ends_well(tok, s.end)) return false;
  uint64_t l = s.neg ? 0 - s.mag : s.mag;
  if (static_cast<int64_t>(l) < 0 && s.neg) return false;
  *out = static_cast<uint32_t>(l);
  return true;
}

bool safe_strtol(std::string_view tok, int32_t* out) {
  Scan s = scan_number(tok);
  if (!s.converted || s.overflow) return false;
  if (!s.neg && s.mag > static_cast<uint64_t>(INT64_MAX)) return false;
  if (s.neg && s.mag > static_cast<uint64_t>(INT64_MAX) + 1) return false;
  if (!ends_well(tok, s.end)) return false;
  uint64_t l = s.neg ? 0 - s.mag : s.mag;
  *out = static_cast<int32_t>(static_cast<uint32_t>(l));  // memcached stores a long in an int32
  return true;
}

bool safe_strtoull(std::string_view tok, uint64_t* out) {
  Scan s = scan_number(tok);
  if (!s.converted || s.overflow || !ends_well(tok, s.end)) return false;
  uint64_t l = s.neg ? 0 - s.mag : s.mag;
  if (static_cast<int64_t>(l) < 0 && s.neg) return false;
  *out = l;
  return true;
}

// The line as memcached hands it to the tokenizer: without "\n" (and "\r" before it when the line
// has more than one byte), cut at the first NUL (the C string ends there).
std::string_view command_line(std::string_view in, size_t nl) {
  size_t len = nl;
  if (len > 1 && in[len - 1] == '\r') --len;
  std::string_view line = in.substr(0, len);
  if (const void* z = std::memchr(line.data(), '\0', line.size())) {
    line = line.substr(0, static_cast<size_t>(static_cast<const char*>(z) - line.data()));
  }
  return line;
}

size_t tokenize(std::string_view line, std::string_view* tokens, std::string_view* rest) {
  size_t n = 0;
  size_t pos = 0;
  const size_t len = line.size();
  *rest = {};
  while (true) {
    while (pos < len && line[pos] == ' ') ++pos;
    if (pos >= len) break;
    const void* sp = std::memchr(line.data() + pos, ' ', len - pos);
    size_t end = sp ? static_cast<size_t>(static_cast<const char*>(sp) - line.data()) : len;
    tokens[n++] = line.substr(pos, end - pos);
    if (!sp) break;
    if (n == kMaxTokens - 1) {
      if (end + 1 < len) *rest = line.substr(end + 1);
      break;
    }
    pos = end + 1;
  }
  return n + 1;
}

ParseResult parse(std::string_view in, ValueMax value_max) {
  ParseResult r;
  const void* nlp = std::memchr(in.data(), '\n', in.size());
  if (!nlp) {
    if (in.size() > kLineMaxNoNewline) {
      // memcached: this has to be a large multiget; anything else is junk.
      size_t i = 0;
      while (i < in.size() && in[i] == ' ') ++i;
      std::string_view p = in.substr(i);
      if (i > 100 || !(p.starts_with("get ") || p.starts_with("gets "))) {
        r.status = Status::close;
      }
    }
    return r;
  }
  size_t nl = static_cast<size_t>(static_cast<const char*>(nlp) - in.data());
  Line l;
  l.text = command_line(in, nl);
  l.ntok = tokenize(l.text, l.tok, &l.rest);
  r.status = Status::ready;
  r.consumed = nl + 1;
  dispatch(r, l, in, value_max);
  return r;
}

}  // namespace cachet::dataplane::text
