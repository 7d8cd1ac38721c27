// Strict incremental parser of memcached text-protocol replies to the requests cachet-load
// sends (get/gets/multiget and set). Anything it cannot parse, or that does not answer the
// request (a key not asked for, a bad data trailer), is a protocol error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "perf/loadgen/workload.hh"

namespace cachet::perf {

enum class ReplyKind : uint8_t { get, set };
enum class ParseResult { need_more, done, error };

class ReplyParser {
 public:
  // check_sizes: a hit whose length or bytes differ from what the workload stores for that key
  // is a value error (only sound when this run preloaded every key). expect_cas: requests are `gets`.
  ReplyParser(const Workload& w, bool check_sizes, bool expect_cas)
      : w_(&w), check_sizes_(check_sizes), expect_cas_(expect_cas) {}

  // Begins the reply to one request; keys must stay valid until feed() returns done or error.
  void start(ReplyKind kind, const uint32_t* keys, unsigned nkeys) {
    kind_ = kind;
    keys_ = keys;
    nkeys_ = nkeys;
    cursor_ = 0;
    hits_ = 0;
    server_error_ = false;
    value_errors_ = 0;
  }

  // Parses the start of `in`, setting *used to the bytes it consumed (whole lines and value
  // blocks only; the caller keeps the rest and offers it again with more input).
  ParseResult feed(std::string_view in, size_t* used);

  uint32_t hits() const { return hits_; }
  // The reply was a well-formed ERROR / CLIENT_ERROR / SERVER_ERROR / NOT_STORED line.
  bool server_error() const { return server_error_; }
  uint32_t value_errors() const { return value_errors_; }
  // What was wrong, after error (or a server error line), for the first-error report.
  const std::string& what() const { return what_; }

 private:
  ParseResult fail(std::string msg);
  ParseResult value_line(std::string_view line, std::string_view rest, size_t* block);

  const Workload* w_;
  bool check_sizes_;
  bool expect_cas_;
  ReplyKind kind_ = ReplyKind::get;
  const uint32_t* keys_ = nullptr;
  unsigned nkeys_ = 0;
  unsigned cursor_ = 0;  // keys_[cursor_..] may still appear in VALUE lines
  uint32_t hits_ = 0;
  bool server_error_ = false;
  uint32_t value_errors_ = 0;
  std::string what_;
};

}  // namespace cachet::perf
