// Shared by the fuzz targets: a fresh private store with a Server on it (one per input, so a
// finding replays alone), a stream connection driven the way the io_uring driver drives it,
// and the failure report that makes libFuzzer keep the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "common/byte_buf.hh"
#include "dataplane/server.hh"
#include "dataplane/settings.hh"
#include "store/store.hh"

namespace cachet::fuzz {

// Up to 80 bytes of s with control bytes escaped, for failure messages.
std::string printable(std::string_view s);

// Prints what broke and aborts: libFuzzer records the input as a crash.
[[noreturn]] void fail(const std::string& what);

}  // namespace cachet::fuzz

// Fails (see fail) with the formatted message when cond is false; the message's arguments are
// evaluated only then, so a check costs nothing on the passing path.
#define FUZZ_EXPECT(cond, ...)                                        \
  do {                                                                \
    if (!(cond)) ::cachet::fuzz::fail(fmt::format(__VA_ARGS__));      \
  } while (0)

namespace cachet::fuzz {

// The store and Server an input runs against: -m 2, -I 4k (too-large values, evictions and
// page moves are a few hundred input bytes away), one worker. Opening a store costs more than
// most inputs (a fresh mapping, its page faults and unmapping), so one named arena lives for
// the whole process and each Target puts its bytes back as they were when it was made: every
// input starts from an empty store, as if it ran alone. The store's per-process counters
// (`stats` figures) are the only thing that carries over.
struct Target {
  Target();
  ~Target();
  // The store's consistency check must hold (run it once the input is done).
  void check_store() const;

  dataplane::Settings settings;
  store::Store* store;
  std::unique_ptr<dataplane::Server> server;
};

// One stream connection. feed() offers the input the way the driver does: unconsumed bytes
// again with the new ones appended, replies "sent" after every call.
class Stream {
 public:
  explicit Stream(Target& t);
  ~Stream();
  void feed(std::string_view bytes);

  const std::string& sent() const { return sent_; }
  std::string_view pending() const { return pending_; }
  bool closed() const { return closed_; }
  // No request half read and no data block being swallowed: the next byte starts a request.
  bool at_boundary() const;

 private:
  Target& t_;
  void* state_;
  std::string pending_, sent_;
  common::ByteBuf out_;
  bool closed_ = false;
};

// Feeds the input of a stream target: data[0] picks the largest read (1..255 bytes, 0 = the
// whole input at once) and data[1] seeds the choice of read sizes; the rest is the byte stream.
void feed_in_reads(Stream& s, const uint8_t* data, size_t size);

}  // namespace cachet::fuzz
