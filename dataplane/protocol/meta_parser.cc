// The meta protocol parser: proto_text.c's process_m*_command checks and _meta_flag_preparse,
// in memcached 1.6.18's order and with its error lines, and memcached's base64 (base64.c).
#include "dataplane/protocol/meta_parser.hh"

#include <climits>

#include "dataplane/protocol/replies.hh"

namespace cachet::dataplane::meta {

namespace {

using namespace reply;

// base64.c's table: the 6-bit value of each byte, 0x80 for bytes outside the alphabet ('='
// decodes as 0 and counts as a symbol).
constexpr unsigned char kInvalid = 0x80;
struct DecodeTable {
  unsigned char v[256];
  constexpr DecodeTable() : v{} {
    for (auto& x : v) x = kInvalid;
    constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (unsigned i = 0; i < 64; ++i) v[static_cast<unsigned char>(kAlphabet[i])] = i;
    v['='] = 0;
  }
};
constexpr DecodeTable kDecode;
constexpr char kEncode[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void mark(Request* q, unsigned char c) { q->seen[c >> 6] |= uint64_t{1} << (c & 63); }

// _meta_flag_preparse over q->flags: records each flag and its value. Returns "" or the error
// line: a duplicate or unknown flag stops at once, a bad value is noted and parsing goes on
// (so the last bad value names the error).
std::string_view preparse(Request* q) {
  std::string_view err;
  bool has_error = false;
  auto bad = [&](std::string_view e) {
    err = e;
    has_error = true;
  };
  for (size_t i = 0; i < q->nflags; ++i) {
    std::string_view t = q->flags[i];
    auto o = static_cast<unsigned char>(t[0]);
    if (o >= 127 || q->has(static_cast<char>(o))) return kDuplicateFlag;
    mark(q, o);
    std::string_view arg = t.substr(1);
    switch (o) {
      case 'b': {
        q->key_len = base64_decode(q->raw_key, q->key_buf);
        q->key_binary = true;
        if (q->key_len == 0) bad(kBadKeyDecode);
        break;
      }
      case 'N':
        if (!text::safe_strtol(arg, &q->vivify_ttl)) bad(kBadToken);
        break;
      case 'T':
        if (!text::safe_strtol(arg, &q->ttl)) bad(kBadToken);
        break;
      case 'R':
        if (!text::safe_strtol(arg, &q->recache_ttl)) bad(kBadToken);
        break;
      case 'F':  // memcached notes the error without naming it
        if (!text::safe_strtoul(arg, &q->client_flags)) has_error = true;
        break;
      case 'C':
        if (!text::safe_strtoull(arg, &q->cas)) bad(kBadToken);
        break;
      case 'M':
        if (t.size() != 2) bad(kBadMLength);
        else q->mode = t[1];
        break;
      case 'J':
        if (!text::safe_strtoull(arg, &q->initial)) bad(kBadInitial);
        break;
      case 'D':
        if (!text::safe_strtoull(arg, &q->delta)) bad(kBadDelta);
        break;
      case 'O': case 'P': case 'L': case 'k': case 's': case 't': case 'c': case 'f':
      case 'v': case 'h': case 'l': case 'u': case 'q': case 'I':
        break;
      default:
        return kInvalidFlag;
    }
  }
  if (!has_error) return {};
  return err.empty() ? kBadFormat : err;
}

}  // namespace

void parse(std::string_view line, Request* q) {
  std::string_view tok[text::kMaxTokens];
  std::string_view rest;
  const size_t ntok = text::tokenize(line, tok, &rest);  // memcached's count: tokens + 1
  switch (tok[0].size() == 2 ? tok[0][1] : 0) {
    case 'g': q->cmd = Cmd::get; break;
    case 's': q->cmd = Cmd::set; break;
    case 'd': q->cmd = Cmd::del; break;
    case 'a': q->cmd = Cmd::arith; break;
    case 'e': q->cmd = Cmd::debug; break;
    case 'n': q->cmd = Cmd::noop; return;
    default: q->error = kError; return;
  }
  if (q->cmd == Cmd::debug) {  // process_meta_command: only "b" in third place is looked at
    if (ntok < 3 || tok[1].size() > text::kKeyMax) {
      q->error = kBadFormat;
      return;
    }
    q->raw_key = tok[1];
    if (ntok >= 4 && tok[2] == "b") {
      q->key_binary = true;
      q->key_len = base64_decode(q->raw_key, q->key_buf);
      if (q->key_len == 0) q->error = kBadFormat;
    }
    return;
  }
  if (ntok < 3) {
    q->error = kError;
    return;
  }
  if (tok[1].size() > text::kKeyMax || (q->cmd == Cmd::set && ntok == 3)) {
    q->error = kBadFormat;
    return;
  }
  q->raw_key = tok[1];
  if (ntok > kMaxFlagTokens) {
    q->error = q->cmd == Cmd::get ? kFlagsTooLongMg : kFlagsTooLong;
    return;
  }
  size_t first = 2;
  if (q->cmd == Cmd::set) {
    int32_t vlen = 0;
    if (!text::safe_strtol(tok[2], &vlen) || vlen < 0 || vlen > INT_MAX - 2) {
      q->error = kBadFormat;
      return;
    }
    q->vlen = vlen;
    first = 3;
  }
  for (size_t i = first; i + 1 < ntok; ++i) q->flags[q->nflags++] = tok[i];
  for (size_t i = 0; i < q->nflags; ++i) {
    if (q->flags[i][0] == 'O' && q->flags[i].size() > kMaxOpaque) {
      q->long_opaque = i;
      break;
    }
  }
  std::string_view err = preparse(q);
  if (!err.empty()) {
    q->error = (q->cmd == Cmd::del || q->cmd == Cmd::arith) ? kInvalidOrDup : err;
    return;
  }
  switch (q->cmd) {
    case Cmd::set:  // an unknown mode outranks a long opaque
      if (q->mode && std::string_view("EAPRS").find(q->mode) == std::string_view::npos) {
        q->error = kBadMsMode;
      } else if (q->long_opaque != kNone) {
        q->error = kLongOpaque;
      }
      break;
    case Cmd::del:
      if (q->long_opaque != kNone) q->error = kLongOpaque;
      break;
    case Cmd::arith:
      if (q->mode && std::string_view("I+D-").find(q->mode) == std::string_view::npos) {
        q->error = kBadMaMode;
      }
      break;
    default:
      break;
  }
}

void frame(text::ParseResult& r, std::string_view line, std::string_view in,
           text::ValueMax value_max) {
  text::Request& q = r.req;
  q.cmd = text::Cmd::meta;
  q.line = line;
  if (line.size() < 2 || line[1] != 's') return;  // every other meta command is one line
  Request m;
  parse(line, &m);
  if (m.vlen < 0) return;  // refused before its data length: nothing follows
  const size_t block = static_cast<size_t>(m.vlen) + 2;
  if (!m.error.empty() || static_cast<size_t>(m.vlen) > value_max(m.key().size())) {
    q.too_large = m.error.empty();
    r.swallow = block;
    return;
  }
  const size_t need = r.consumed + block;
  if (in.size() < need) {
    r.status = text::Status::need_more;
    r.need = need;
    r.consumed = 0;
    return;
  }
  q.data = in.substr(r.consumed, static_cast<size_t>(m.vlen));
  q.bad_chunk = in[need - 2] != '\r' || in[need - 1] != '\n';
  r.consumed = need;
}

size_t base64_decode(std::string_view in, char* out) {
  size_t count = 0;
  for (char c : in) count += kDecode.v[static_cast<unsigned char>(c)] != kInvalid;
  if (count == 0 || count % 4) return 0;
  unsigned char block[4];
  size_t n = 0, pos = 0;
  int pad = 0;
  for (char c : in) {
    unsigned char v = kDecode.v[static_cast<unsigned char>(c)];
    if (v == kInvalid) continue;
    if (c == '=') ++pad;
    block[n++] = v;
    if (n < 4) continue;
    out[pos++] = static_cast<char>((block[0] << 2) | (block[1] >> 4));
    out[pos++] = static_cast<char>((block[1] << 4) | (block[2] >> 2));
    out[pos++] = static_cast<char>((block[2] << 6) | block[3]);
    n = 0;
    if (pad) {
      if (pad > 2) return 0;  // invalid padding
      pos -= static_cast<size_t>(pad);
      break;
    }
  }
  return pos;
}

size_t base64_encode(std::string_view in, char* out) {
  auto u = [&](size_t i) { return static_cast<unsigned char>(in[i]); };
  size_t i = 0, pos = 0;
  for (; in.size() - i >= 3; i += 3) {
    out[pos++] = kEncode[u(i) >> 2];
    out[pos++] = kEncode[((u(i) & 0x03) << 4) | (u(i + 1) >> 4)];
    out[pos++] = kEncode[((u(i + 1) & 0x0f) << 2) | (u(i + 2) >> 6)];
    out[pos++] = kEncode[u(i + 2) & 0x3f];
  }
  if (size_t left = in.size() - i) {
    out[pos++] = kEncode[u(i) >> 2];
    if (left == 1) {
      out[pos++] = kEncode[(u(i) & 0x03) << 4];
      out[pos++] = '=';
    } else {
      out[pos++] = kEncode[((u(i) & 0x03) << 4) | (u(i + 1) >> 4)];
      out[pos++] = kEncode[(u(i + 1) & 0x0f) << 2];
    }
    out[pos++] = '=';
  }
  return pos;
}

}  // namespace cachet::dataplane::meta
