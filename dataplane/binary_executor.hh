// The binary protocol executor: runs one parsed binary request against the store and appends
// memcached 1.6.18's response packets. Shares the store calls and counters with the text
// executor (store_ops.hh).
#pragma once

#include <string>

#include "common/byte_buf.hh"
#include "dataplane/executor.hh"
#include "dataplane/protocol/binary_parser.hh"
#include "dataplane/store_ops.hh"

namespace cachet::dataplane {

// One worker's binary executor. Not thread safe: used only by its worker's thread, next to
// that worker's text Executor (both count into the same WorkerStats).
class BinaryExecutor {
 public:
  BinaryExecutor(ExecShared& shared, unsigned worker);

  // Runs req and appends its response packets to out: nothing for a quiet request that
  // succeeded (or a quiet get that missed), as memcached. Returns close when the connection
  // must be closed once out is sent (QUIT, and the malformed requests memcached closes on).
  // A too_large request's value is not read: the caller swallows it.
  Executor::After execute(const binary::Request& req, common::ByteBuf& out);

 private:
  // What an uncounted look at an item found (for the requests that carry a cas to compare).
  struct Peek {
    bool hit = false;
    uint64_t cas = 0;
    uint32_t flags = 0;
    uint32_t exptime = 0;
  };
  Peek peek(std::string_view key, std::string* value);

  void retrieve(const binary::Request& req, common::ByteBuf& out);
  void update(const binary::Request& req, common::ByteBuf& out);
  void update_with_cas(const binary::Request& req, common::ByteBuf& out);
  void remove(const binary::Request& req, common::ByteBuf& out);
  void delta(const binary::Request& req, common::ByteBuf& out);
  void create_counter(const binary::Request& req, common::ByteBuf& out);
  void stat(const binary::Request& req, common::ByteBuf& out);
  void stat_packets(const binary::Request& req, std::string_view group, common::ByteBuf& out);

  ExecShared& shared_;
  StoreOps ops_;
  std::string scratch_;     // an item's value for append/prepend with a cas
  common::ByteBuf text_;    // the text form of a stats group, turned into packets
  common::ByteBuf unused_;  // the output buffer the store's read callback is given by peek()
};

}  // namespace cachet::dataplane
