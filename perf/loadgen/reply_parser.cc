// ReplyParser: line splitting, VALUE blocks, status lines; strict about framing and keys.
#include "perf/loadgen/reply_parser.hh"

#include <fmt/core.h>

#include <charconv>
#include <cstring>

namespace cachet::perf {
namespace {

constexpr size_t kMaxLine = 1024;  // longer than any reply line we can provoke
constexpr uint32_t kMaxValueBytes = 1u << 20;

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

template <typename T>
bool to_num(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Shows up to 60 bytes of s with control characters escaped, for error messages.
std::string printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 60; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f)
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("\\x{:02x}", c);
  }
  if (s.size() > 60) out += "...";
  return out;
}

}  // namespace

ParseResult ReplyParser::fail(std::string msg) {
  what_ = std::move(msg);
  return ParseResult::error;
}

ParseResult ReplyParser::feed(std::string_view in, size_t* used) {
  size_t pos = 0;
  *used = 0;
  for (;;) {
    std::string_view rest = in.substr(pos);
    const void* nlp = std::memchr(rest.data(), '\n', rest.size());
    if (!nlp) {
      if (rest.size() > kMaxLine)
        return fail(fmt::format("no line end within {} bytes: '{}'", kMaxLine, printable(rest)));
      return ParseResult::need_more;
    }
    size_t nl = static_cast<size_t>(static_cast<const char*>(nlp) - rest.data());
    if (nl == 0 || rest[nl - 1] != '\r')
      return fail(fmt::format("line not ended by \\r\\n: '{}'", printable(rest.substr(0, nl + 1))));
    if (nl > kMaxLine) return fail(fmt::format("reply line too long: '{}'", printable(rest)));
    std::string_view line = rest.substr(0, nl - 1);
    size_t adv = nl + 1;

    if (kind_ == ReplyKind::get) {
      if (line == "END") {
        *used = pos + adv;
        return ParseResult::done;
      }
      if (starts_with(line, "VALUE ")) {
        size_t block = 0;
        ParseResult r = value_line(line.substr(6), rest.substr(adv), &block);
        if (r != ParseResult::done) return r;  // need_more leaves the line unconsumed
        pos += adv + block;
        *used = pos;
        continue;
      }
    } else {
      if (line == "STORED") {
        *used = pos + adv;
        return ParseResult::done;
      }
      if (line == "NOT_STORED" || line == "EXISTS" || line == "NOT_FOUND") {
        server_error_ = true;
        what_ = fmt::format("set answered '{}'", line);
        *used = pos + adv;
        return ParseResult::done;
      }
    }
    if (line == "ERROR" || starts_with(line, "CLIENT_ERROR ") ||
        starts_with(line, "SERVER_ERROR ")) {
      server_error_ = true;
      what_ = fmt::format("server replied '{}'", printable(line));
      *used = pos + adv;
      return ParseResult::done;
    }
    return fail(fmt::format("unexpected reply to {}: '{}'", kind_ == ReplyKind::get ? "get" : "set",
                            printable(line)));
  }
}

// `fields` is the VALUE line after "VALUE "; `after` the input that follows the line. On done,
// *block is the data block's length with its \r\n; state changes only then.
ParseResult ReplyParser::value_line(std::string_view fields, std::string_view after,
                                    size_t* block) {
  std::string_view tok[5];
  unsigned n = 0;
  while (!fields.empty() && n < 5) {
    size_t sp = fields.find(' ');
    tok[n++] = fields.substr(0, sp);
    fields = sp == std::string_view::npos ? std::string_view() : fields.substr(sp + 1);
  }
  unsigned want = expect_cas_ ? 4 : 3;
  uint32_t flags = 0, bytes = 0;
  uint64_t cas = 0;
  if (n != want || !fields.empty() || !to_num(tok[1], &flags) || !to_num(tok[2], &bytes) ||
      (expect_cas_ && !to_num(tok[3], &cas)))
    return fail(fmt::format("malformed VALUE line: 'VALUE {} {} {} {}'", printable(tok[0]),
                            printable(tok[1]), printable(tok[2]), printable(tok[3])));
  if (bytes > kMaxValueBytes) return fail(fmt::format("VALUE of {} bytes exceeds 1 MB", bytes));
  unsigned c = cursor_;
  while (c < nkeys_ && !w_->key_equals(keys_[c], tok[0])) ++c;
  if (c == nkeys_)
    return fail(fmt::format("VALUE for key '{}' that was not requested (or out of order)",
                            printable(tok[0])));
  if (after.size() < static_cast<size_t>(bytes) + 2) return ParseResult::need_more;
  if (after[bytes] != '\r' || after[bytes + 1] != '\n')
    return fail(
        fmt::format("{}-byte value for '{}' not followed by \\r\\n", bytes, printable(tok[0])));
  cursor_ = c + 1;
  ++hits_;
  if (check_sizes_ && bytes != w_->value_size(keys_[c])) {
    if (value_errors_++ == 0)
      what_ = fmt::format("value of '{}' has {} bytes, preloaded {}", printable(tok[0]), bytes,
                          w_->value_size(keys_[c]));
  } else if (check_sizes_ && after.substr(0, bytes) != w_->value_bytes(bytes)) {
    // Every set this generator sends writes the same pattern: anything else is corruption.
    if (value_errors_++ == 0)
      what_ = fmt::format("value of '{}' ({} bytes) differs from what was stored",
                          printable(tok[0]), bytes);
  }
  *block = static_cast<size_t>(bytes) + 2;
  return ParseResult::done;
}

}  // namespace cachet::perf
