// memcached 1.6.18's meta protocol, request side (mg ms md ma me mn): one command line into
// key, flags and flag values with memcached's checks and error lines, plus the framing of
// ms's data block for the text parser. Works on byte spans only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dataplane/protocol/text_parser.hh"

namespace cachet::dataplane::meta {

inline constexpr size_t kMaxOpaque = 32;      // memcached's MFLAG_MAX_OPAQUE_LENGTH ('O' counts)
inline constexpr size_t kMaxFlagTokens = 20;  // MFLAG_MAX_OPT_LENGTH, on memcached's token count
inline constexpr size_t kNone = static_cast<size_t>(-1);

enum class Cmd : uint8_t { get, set, del, arith, debug, noop };

// One parsed meta command. Views point into the line given to parse(); key() of a base64 key
// (flag b) points into the request itself, so a Request must not be copied while in use.
struct Request {
  Cmd cmd = Cmd::noop;
  // Non-empty: the line memcached answers instead (with "\r\n"); sent even with q.
  std::string_view error;
  std::string_view raw_key;  // the key token as sent
  bool key_binary = false;   // flag b: key() is raw_key base64-decoded
  // The flag tokens after the key (after the data length for ms), in request order: replies
  // echo O, k, c, ... in this order.
  std::string_view flags[text::kMaxTokens];
  size_t nflags = 0;
  // Index in flags of the first O token longer than kMaxOpaque, else kNone. mg and ma meet it
  // while building the reply (after their change is made), as memcached does.
  size_t long_opaque = kNone;
  int32_t vlen = -1;  // ms: the data length; -1 when the line was refused before it was read
  // Flag values, meaningful when has() the flag.
  int32_t vivify_ttl = 0;   // N
  int32_t ttl = 0;          // T
  int32_t recache_ttl = 0;  // R
  uint32_t client_flags = 0;  // F
  uint64_t cas = 0;         // C
  uint64_t delta = 1;       // D
  uint64_t initial = 0;     // J
  char mode = 0;            // M

  bool has(char flag) const {
    auto c = static_cast<unsigned char>(flag);
    return c < 128 && (seen[c >> 6] >> (c & 63) & 1);
  }
  std::string_view key() const {
    return key_binary ? std::string_view(key_buf, key_len) : raw_key;
  }

  uint64_t seen[2] = {0, 0};  // flags present, one bit per character
  char key_buf[text::kKeyMax];
  size_t key_len = 0;
};

// Parses one meta command line (without its line end, as the text parser cuts it). On a
// refused line sets `error` to memcached's reply for the first check that failed, in
// memcached's order (for flags, the last problem found wins, as in _meta_flag_preparse).
void parse(std::string_view line, Request* out);

// The text parser's hook for "mg ms md ma me": marks r.req as Cmd::meta with its line and,
// for ms, frames the data block like a storage command: need_more until it is whole, then
// data and bad_chunk; a refused ms (after its length was read) or a value over value_max
// (too_large) swallows the block instead.
void frame(text::ParseResult& r, std::string_view line, std::string_view in,
           text::ValueMax value_max);

// memcached's base64 (base64.c): decode skips bytes outside the alphabet, needs a multiple of
// four symbols and stops after the first padded block; it returns the decoded length, 0 on
// failure, and may decode in place (out <= in). encode writes 4 * ceil(n / 3) bytes.
size_t base64_decode(std::string_view in, char* out);
size_t base64_encode(std::string_view in, char* out);
inline constexpr size_t base64_encoded_size(size_t n) { return (n + 2) / 3 * 4; }

}  // namespace cachet::dataplane::meta
