// Reply shape checks: lines are split at "\r\n", matched against the table by their first token,
// and their arguments checked kind by kind; data blocks must have their length and "\r\n".
#include "tests/fuzz/replies.hh"

#include <charconv>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "dataplane/protocol/binary_parser.hh"
#include "tests/fuzz/harness.hh"

namespace cachet::fuzz {
namespace {

constexpr ReplyShape kTextReplies[] = {
    // classic text protocol
    {"VALUE", "key u32 u64 u64?", 2},
    {"END", ""},
    {"STORED", ""},
    {"NOT_STORED", ""},
    {"EXISTS", ""},
    {"NOT_FOUND", ""},
    {"DELETED", ""},
    {"TOUCHED", ""},
    {"OK", ""},
    {"RESET", ""},
    {"ERROR", ""},
    {"ERROR:", "text"},  // "ERROR: shutdown not enabled"
    {"#", ""},
    {"VERSION", "text"},
    {"STAT", "word text?"},
    {"CLIENT_ERROR", "text"},
    {"SERVER_ERROR", "text"},
    {"MEMLIMIT_TOO_SMALL", "text"},
    {"MEMLIMIT_ADJUST_FAILED", "text"},
    {"SAME", "text"},  // slabs reassign
    {"BADCLASS", "text"},
    {"NOSPARE", "text"},
    // mcrouter's lease dialect: lease-get, lease-set, metaget
    {"LVALUE", "key u64 u32 u64", 3},
    {"STALE_STORED", ""},
    {"META", "key text"},
    // meta protocol
    {"VA", "u64 mflags", 0},
    {"HD", "mflags"},
    {"EN", "mflags"},
    {"NF", "mflags"},
    {"NS", "mflags"},
    {"EX", "mflags"},
    {"MN", ""},
    {"ME", "key text"},
};

bool is_dec(std::string_view t, uint64_t max) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  return !t.empty() && ec == std::errc() && p == t.data() + t.size() && v <= max;
}

// Checks the argument list of one line; *data_len gets the data block length when the shape
// has one. Returns "" or the problem.
std::string check_args(const ReplyShape& s, std::string_view rest, uint64_t* data_len) {
  std::string_view kinds = s.args;
  int index = 0;
  while (!kinds.empty()) {
    const size_t sp = kinds.find(' ');
    std::string_view kind = kinds.substr(0, sp);
    kinds = sp == std::string_view::npos ? std::string_view() : kinds.substr(sp + 1);
    const bool optional = kind.back() == '?';
    if (optional) kind.remove_suffix(1);
    if (kind == "mflags") {
      for (size_t i = 0; i < rest.size();) {
        if (rest[i] != ' ') return "meta flags not separated by one space";
        size_t end = rest.find(' ', i + 1);
        if (end == std::string_view::npos) end = rest.size();
        const char f = end > i + 1 ? rest[i + 1] : ' ';
        if (!((f >= 'a' && f <= 'z') || (f >= 'A' && f <= 'Z')))
          return fmt::format("meta flag '{}' does not start with a letter",
                             printable(rest.substr(i + 1, end - i - 1)));
        i = end;
      }
      return "";
    }
    if (rest.empty()) {
      if (optional) return "";
      return fmt::format("argument {} ({}) missing", index, kind);
    }
    if (rest[0] != ' ') return "arguments not separated by a space";
    rest.remove_prefix(1);
    if (kind == "text") {
      if (rest.empty()) return "empty text";
      return "";
    }
    const size_t end = std::min(rest.find(' '), rest.size());
    const std::string_view tok = rest.substr(0, end);
    rest.remove_prefix(end);
    if (kind == "key") {
      if (tok.empty() || tok.size() > 250) return fmt::format("key of {} bytes", tok.size());
    } else if (kind == "u32" || kind == "u64") {
      if (!is_dec(tok, kind == "u32" ? UINT32_MAX : UINT64_MAX))
        return fmt::format("'{}' is not a {}", printable(tok), kind);
      if (index == s.data_arg) *data_len = std::stoull(std::string(tok));
    } else if (tok.empty()) {  // word
      return "empty word";
    }
    ++index;
  }
  if (!rest.empty()) return fmt::format("extra bytes '{}'", printable(rest));
  return "";
}

}  // namespace

std::span<const ReplyShape> text_replies() { return kTextReplies; }

std::string check_text_replies(std::string_view out) {
  size_t pos = 0;
  bool in_retrieval = false;  // after VALUE blocks, END must close the reply
  while (pos < out.size()) {
    const size_t eol = out.find("\r\n", pos);
    if (eol == std::string_view::npos)
      return fmt::format("at {}: unterminated line '{}'", pos, printable(out.substr(pos)));
    const std::string_view line = out.substr(pos, eol - pos);
    const size_t sp = std::min(line.find(' '), line.size());
    const std::string_view head = line.substr(0, sp);
    const ReplyShape* shape = nullptr;
    for (const ReplyShape& s : kTextReplies)
      if (s.head == head || (s.head == "#" && is_dec(line, UINT64_MAX))) shape = &s;
    if (!shape) return fmt::format("at {}: unknown reply line '{}'", pos, printable(line));
    const bool retrieval_line = head == "VALUE" || head == "LVALUE" || head == "META";
    if (in_retrieval && !retrieval_line && head != "END")
      return fmt::format("at {}: '{}' inside a retrieval reply", pos, printable(line));
    in_retrieval = retrieval_line;
    uint64_t data_len = 0;
    const std::string why =
        shape->head == "#" ? "" : check_args(*shape, line.substr(sp), &data_len);
    if (!why.empty()) return fmt::format("at {}: '{}': {}", pos, printable(line), why);
    pos = eol + 2;
    if (shape->data_arg < 0) continue;
    if (out.size() - pos < data_len + 2)
      return fmt::format("at {}: '{}': data block cut short", pos, printable(line));
    if (out.substr(pos + data_len, 2) != "\r\n")
      return fmt::format("at {}: '{}': data block not followed by \\r\\n", pos, printable(line));
    pos += data_len + 2;
  }
  if (in_retrieval) return "retrieval reply without END";
  return "";
}

std::string check_binary_replies(std::string_view out) {
  using dataplane::binary::Status;
  auto rd16 = [&](size_t at) {
    return static_cast<uint16_t>(static_cast<uint8_t>(out[at]) << 8 |
                                 static_cast<uint8_t>(out[at + 1]));
  };
  size_t pos = 0;
  while (pos < out.size()) {
    if (out.size() - pos < dataplane::binary::kHeaderSize)
      return fmt::format("at {}: response header cut short", pos);
    const auto magic = static_cast<uint8_t>(out[pos]);
    const uint16_t keylen = rd16(pos + 2);
    const auto extlen = static_cast<uint8_t>(out[pos + 4]);
    const auto type = static_cast<uint8_t>(out[pos + 5]);
    const uint16_t status = rd16(pos + 6);
    const uint32_t body = uint32_t{rd16(pos + 8)} << 16 | rd16(pos + 10);
    if (magic != dataplane::binary::kResponseMagic || type != 0)
      return fmt::format("at {}: magic {:#x}, data type {}", pos, magic, type);
    if (size_t{keylen} + extlen > body)
      return fmt::format("at {}: key {} + extras {} > body {}", pos, keylen, extlen, body);
    if (out.size() - pos - dataplane::binary::kHeaderSize < body)
      return fmt::format("at {}: body of {} bytes cut short", pos, body);
    const std::string_view payload = out.substr(pos + dataplane::binary::kHeaderSize, body);
    switch (static_cast<Status>(status)) {
      case Status::ok:
        break;
      case Status::key_enoent: case Status::key_eexists: case Status::e2big:
      case Status::einval: case Status::not_stored: case Status::delta_badval:
      case Status::unknown_command: case Status::enomem:
        // A GETK-family miss carries the key instead of the message; out of memory names
        // the step that failed, as memcached does.
        if (static_cast<Status>(status) == Status::key_enoent && keylen && !extlen &&
            keylen == body)
          break;
        if (keylen || extlen ||
            (payload != dataplane::binary::status_text(static_cast<Status>(status)) &&
             !(static_cast<Status>(status) == Status::enomem &&
               payload.starts_with("Out of memory"))))
          return fmt::format("at {}: status {:#x} with body '{}'", pos, status,
                             printable(payload));
        break;
      default:
        return fmt::format("at {}: status {:#x} memcached never sends", pos, status);
    }
    pos += dataplane::binary::kHeaderSize + body;
  }
  return "";
}

}  // namespace cachet::fuzz
