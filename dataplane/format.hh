// Reply building helpers: append text and decimal numbers to a ByteBuf without temporaries,
// shared by the executor and the stats report.
#pragma once

#include <charconv>
#include <cstdint>
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

}  // namespace cachet::dataplane
