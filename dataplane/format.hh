// Reply building helpers: append text and decimal numbers to a ByteBuf without temporaries,
// shared by the executor and the stats report.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/byte_buf.hh"

namespace cachet::dataplane {

// Appends the decimal form of v.
inline void append_dec(common::ByteBuf& out, uint64_t v) {
  char* p = out.prepare(20);
  auto r = std::to_chars(p, p + 20, v);
  out.commit(static_cast<size_t>(r.ptr - p));
}

inline void append_dec_signed(common::ByteBuf& out, int64_t v) {
  char* p = out.prepare(20);
  auto r = std::to_chars(p, p + 20, v);
  out.commit(static_cast<size_t>(r.ptr - p));
}

// Appends "<v>\r\n" (incr/decr replies).
inline void append_dec_line(common::ByteBuf& out, uint64_t v) {
  char* p = out.prepare(22);
  auto r = std::to_chars(p, p + 20, v);
  r.ptr[0] = '\r';
  r.ptr[1] = '\n';
  out.commit(static_cast<size_t>(r.ptr + 2 - p));
}

// Appends "STAT <name> <value>\r\n".
inline void append_stat(common::ByteBuf& out, std::string_view name, std::string_view value) {
  out.append("STAT ");
  out.append(name);
  out.push_back(' ');
  out.append(value);
  out.append("\r\n");
}

inline void append_stat(common::ByteBuf& out, std::string_view name, uint64_t value) {
  out.append("STAT ");
  out.append(name);
  out.push_back(' ');
  append_dec(out, value);
  out.append("\r\n");
}

// Appends "<head> <key> [<token> ]<flags> <bytes>[ <cas>]\r\n<data>\r\n": a get's VALUE line
// and block (token 0 and with_cas false), or a lease-get's LVALUE (a token). `value` must be
// followed by "\r\n" in memory (store::ItemView's values are), so it is copied in one piece.
inline void append_value(common::ByteBuf& out, std::string_view head, std::string_view key,
                         uint64_t token, uint32_t flags, std::string_view value, bool with_cas,
                         uint64_t cas) {
  char* p = out.prepare(head.size() + 1 + key.size() + 1 + 21 + 10 + 1 + 20 + 1 + 20 + 2);
  char* q = p;
  std::memcpy(q, head.data(), head.size());
  q += head.size();
  *q++ = ' ';
  std::memcpy(q, key.data(), key.size());
  q += key.size();
  *q++ = ' ';
  if (token != 0) {
    q = std::to_chars(q, q + 20, token).ptr;
    *q++ = ' ';
  }
  q = std::to_chars(q, q + 10, flags).ptr;
  *q++ = ' ';
  q = std::to_chars(q, q + 20, value.size()).ptr;
  if (with_cas) {
    *q++ = ' ';
    q = std::to_chars(q, q + 20, cas).ptr;
  }
  *q++ = '\r';
  *q++ = '\n';
  out.commit(static_cast<size_t>(q - p));
  out.append(value.data(), value.size() + 2);
}

}  // namespace cachet::dataplane
