// memcached's binary protocol, request side: turns bytes into one parsed request at a time with
// memcached 1.6.18's framing and per-opcode length checks (proto_bin.c). Works on byte spans only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/function_ref.hh"

namespace cachet::dataplane::binary {

inline constexpr uint8_t kRequestMagic = 0x80;
inline constexpr uint8_t kResponseMagic = 0x81;
inline constexpr size_t kHeaderSize = 24;
inline constexpr size_t kKeyMax = 250;  // memcached's KEY_MAX_LENGTH
// memcached reads a request's header, extras and key into its 16 KB read buffer; a request
// whose header, extras and key do not fit closes the connection once the buffer is full.
inline constexpr size_t kReadBufferSize = 16384;
// The expiration an increment/decrement uses for "fail with Not found instead of creating".
inline constexpr uint32_t kNoCreate = 0xffffffff;

// Opcodes memcached 1.6.18 knows (protocol_binary.h). Others get "Unknown command".
enum class Opcode : uint8_t {
  get = 0x00,
  set = 0x01,
  add = 0x02,
  replace = 0x03,
  del = 0x04,
  increment = 0x05,
  decrement = 0x06,
  quit = 0x07,
  flush = 0x08,
  getq = 0x09,
  noop = 0x0a,
  version = 0x0b,
  getk = 0x0c,
  getkq = 0x0d,
  append = 0x0e,
  prepend = 0x0f,
  stat = 0x10,
  setq = 0x11,
  addq = 0x12,
  replaceq = 0x13,
  deleteq = 0x14,
  incrementq = 0x15,
  decrementq = 0x16,
  quitq = 0x17,
  flushq = 0x18,
  appendq = 0x19,
  prependq = 0x1a,
  verbosity = 0x1b,
  touch = 0x1c,
  gat = 0x1d,
  gatq = 0x1e,
  sasl_list_mechs = 0x20,
  sasl_auth = 0x21,
  sasl_step = 0x22,
  gatk = 0x23,
  gatkq = 0x24,
};

// Response statuses memcached sends, each with its fixed message body (status_text()).
enum class Status : uint16_t {
  ok = 0x0000,
  key_enoent = 0x0001,    // "Not found"
  key_eexists = 0x0002,   // "Data exists for key."
  e2big = 0x0003,         // "Too large."
  einval = 0x0004,        // "Invalid arguments"
  not_stored = 0x0005,    // "Not stored."
  delta_badval = 0x0006,  // "Non-numeric server-side value for incr or decr"
  unknown_command = 0x0081,
  enomem = 0x0082,  // "Out of memory" (memcached names the failed step instead)
};

// memcached's default message for an error status ("" for ok).
std::string_view status_text(Status s);

// What the executor does with a request: the opcode with its quiet bit folded out.
enum class Cmd : uint8_t {
  get,     // GET GETQ GETK GETKQ
  touch,   // TOUCH GAT GATQ GATK GATKQ (flags: with_key, with_value)
  update,  // SET ADD REPLACE APPEND PREPEND and their quiet forms
  del,     // DELETE DELETEQ
  delta,   // INCREMENT DECREMENT and their quiet forms
  quit,    // QUIT QUITQ: answer (unless quiet), then close
  flush,   // FLUSH FLUSHQ
  noop,
  version,
  stat,
  unknown,   // "Unknown command"; the parse result says how much to swallow after it
  invalid,   // a known opcode with bad lengths: "Invalid arguments", then close
  bad_body,  // body length shorter than extras + key: "Unknown command", then close
};

// One parsed request. The string_views point into the input given to parse().
struct Request {
  Cmd cmd = Cmd::unknown;
  uint8_t opcode = 0;          // as received; echoed in the response
  Opcode base = Opcode::noop;  // the opcode with its quiet form folded (GETQ -> GET)
  bool quiet = false;          // memcached's noreply: the quiet form of the opcode
  bool with_key = false;       // get/touch: GETK GETKQ GATK GATKQ answer with the key
  bool with_value = false;     // get/touch: everything but TOUCH answers with the value
  bool too_large = false;      // update: the value exceeds value_max; it is swallowed, not read
  uint32_t opaque = 0;         // as received (network order kept): echoed byte for byte
  uint64_t cas = 0;
  uint32_t flags = 0;      // update (set/add/replace only)
  uint32_t exptime = 0;    // update, touch, flush, delta (the expiration of a created item)
  uint64_t delta = 0;      // delta: amount
  uint64_t initial = 0;    // delta: value of an item the command creates
  std::string_view key;    // also the stat group for stat
  std::string_view value;  // update: the value (empty when too_large)
};

enum class ParseStatus : uint8_t {
  need_more,  // no complete request in the input yet
  ready,      // `req` is complete and spans `consumed` bytes
  close,      // close without a reply (wrong magic, oversized header + key)
};

struct ParseResult {
  ParseStatus status = ParseStatus::need_more;
  size_t consumed = 0;   // ready: bytes the request spans
  uint64_t swallow = 0;  // ready: bytes following `consumed` to discard without parsing
  size_t need = 0;       // need_more: total input the request needs
  Request req;
};

// Largest value (bytes) the store accepts for a key of the given length.
using ValueMax = common::FunctionRef<size_t(size_t key_len)>;

// Parses the first request in `in` (all unconsumed input of a binary connection). Stateless:
// the caller offers the same bytes again, with more appended, after need_more. A storage
// request is ready only once its whole value is present, except when the value is too large,
// which is ready at once with the value to swallow. Consumes what memcached consumes: the
// header, extras and key, plus the value for storage requests, so bytes a request's body
// length claims beyond that are parsed as the next request (STAT, TOUCH) or swallowed (unknown
// opcodes, where memcached swallows the whole body length after the extras and key).
ParseResult parse(std::string_view in, ValueMax value_max);

}  // namespace cachet::dataplane::binary
