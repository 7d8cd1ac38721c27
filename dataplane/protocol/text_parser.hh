// memcached's classic text protocol, request side: turns bytes into one parsed request at a time,
// with memcached 1.6.18's tokenizing, number parsing and error lines. Works on byte spans only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/function_ref.hh"

namespace cachet::dataplane::text {

// memcached's limits (proto_text.c, memcached.h).
inline constexpr size_t kKeyMax = 250;
inline constexpr size_t kMaxTokens = 24;  // 23 tokens + the terminal one, as memcached counts
// Input without a newline longer than this closes the connection unless it starts like a
// get/gets (large multigets are allowed).
inline constexpr size_t kLineMaxNoNewline = 2048;

enum class Cmd : uint8_t {
  error,  // the line was rejected; reply with Request::error
  get,
  gets,
  gat,
  gats,
  set,
  add,
  replace,
  append,
  prepend,
  cas,
  incr,
  decr,
  del,
  touch,
  flush_all,
  version,
  verbosity,
  quit,
  shutdown,
  stats,
  cache_memlimit,
  mn,     // meta no-op: answers "MN"
  meta,   // mg ms md ma me: `line` is the command, for meta::parse (protocol/meta_parser.hh)
  slabs,  // slabs automove|reassign: args/nargs as for stats
  // mcrouter's lease dialect (see dataplane/lease_executor.hh):
  lease_get,  // lease-get <key>
  lease_set,  // lease-set <key> <token> <flags> <exptime> <bytes> [noreply]: token in `number`
  metaget,    // metaget <key>
  tunable,    // tunable <name> [<value>] (admin socket only): args[0], args[1], nargs
};

// One parsed request. The string_views point into the input given to parse().
struct Request {
  Cmd cmd = Cmd::error;
  // Replies are suppressed (memcached sets this where it calls set_noreply_maybe()).
  bool noreply = false;
  // Storage: the value is larger than value_max; the data block is swallowed and `data` empty.
  bool too_large = false;
  // Storage: the data block does not end in "\r\n" (memcached: CLIENT_ERROR bad data chunk).
  bool bad_chunk = false;
  // Stats: number of tokens after "stats" (args holds the first three of them).
  uint8_t nargs = 0;
  uint32_t flags = 0;
  // Protocol exptime after memcached's conversion to int32 (may be negative).
  int32_t exptime = 0;
  // cas: the unique; incr/decr: the delta; verbosity: the level; cache_memlimit: megabytes;
  // delete: the hold-off in seconds (0 = a plain delete); lease-set: the token.
  uint64_t number = 0;
  std::string_view key;   // storage, incr/decr, delete, touch, lease-get, lease-set, metaget
  std::string_view keys;  // get family: the keys, separated by one or more spaces (may be empty)
  std::string_view data;  // storage: the value without its "\r\n"
  // Non-empty: the arguments were rejected; the reply is this line (with "\r\n") unless
  // noreply. cmd then still names the command (flush_all counts even when rejected).
  std::string_view error;
  std::string_view args[3];  // stats, slabs: tokens after the command
  std::string_view line;     // meta: the command line (ms: its data block is in `data`)
};

enum class Status : uint8_t {
  need_more,  // no complete request in the input yet
  ready,      // `req` is complete and spans `consumed` bytes
  close,      // memcached closes the connection here (junk line, HTTP request)
};

struct ParseResult {
  Status status = Status::need_more;
  // ready: bytes the request spans (its line, plus its data block unless too_large).
  size_t consumed = 0;
  // ready: bytes following `consumed` to discard without parsing (a too-large data block).
  uint64_t swallow = 0;
  // need_more: total input the request needs when known (a storage command waiting for its
  // data block), else 0.
  size_t need = 0;
  Request req;
};

// Largest value (bytes) the store accepts for a key of the given length.
using ValueMax = common::FunctionRef<size_t(size_t key_len)>;

// Parses the first request in `in` (all unconsumed input of a connection). Stateless: the
// caller offers the same bytes again, with more appended, after need_more. A storage command
// is ready only once its whole data block is present, except when its value is too large.
ParseResult parse(std::string_view in, ValueMax value_max);

// memcached's safe_strtoul / safe_strtol / safe_strtoull on one token: strtoul-style parse
// (leading whitespace, sign) that must end at the token's end or at whitespace, with memcached's
// negative checks and its truncation to 32 bits. Return false where memcached does.
bool safe_strtoul(std::string_view tok, uint32_t* out);
bool safe_strtol(std::string_view tok, int32_t* out);
bool safe_strtoull(std::string_view tok, uint64_t* out);

// The command line that ends at in[nl] (a '\n'), as memcached hands it to the tokenizer:
// without "\n" (and "\r" before it when the line has more than one byte), cut at the first NUL.
std::string_view command_line(std::string_view in, size_t nl);

// Splits `line` (one command line without its line end) into at most kMaxTokens - 1 tokens at
// spaces, as memcached's tokenize_command. Returns the token count memcached reports (tokens
// + 1 for the terminal entry); *rest gets the unsplit remainder when the limit was hit.
size_t tokenize(std::string_view line, std::string_view* tokens, std::string_view* rest);

}  // namespace cachet::dataplane::text
