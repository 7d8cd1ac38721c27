// The binary protocol executor: runs one parsed binary request against the store and appends
// memcached 1.6.18's response packets. Shares the item rules and counters with the text
// executor (item_rules.hh).
#pragma once

#include "common/byte_buf.hh"
#include "dataplane/executor.hh"
#include "dataplane/protocol/binary_parser.hh"
#include "dataplane/item_rules.hh"

namespace cachet::dataplane {

// One worker's binary executor. Not thread safe: used only by its worker's thread, next to
// that worker's text Executor (both count into the same WorkerStats).
class BinaryExecutor {
 public:
  BinaryExecutor(ExecShared& shared, ItemRules& rules);

  // Runs req and appends its response packets to out: nothing for a quiet request that
  // succeeded (or a quiet get that missed), as memcached. Returns close when the connection
  // must be closed once out is sent (QUIT, and the malformed requests memcached closes on).
  // A too_large request's value is not read: the caller swallows it.
  Executor::After execute(const binary::Request& req, common::ByteBuf& out);

 private:
  void retrieve(const binary::Request& req, common::ByteBuf& out);
  void update(const binary::Request& req, common::ByteBuf& out);
  void remove(const binary::Request& req, common::ByteBuf& out);
  void delta(const binary::Request& req, common::ByteBuf& out);
  void stat(const binary::Request& req, common::ByteBuf& out);
  void stat_packets(const binary::Request& req, std::string_view group, common::ByteBuf& out);

  ExecShared& shared_;
  ItemRules& rules_;
  common::ByteBuf text_;  // the text form of a stats group, turned into packets
};

}  // namespace cachet::dataplane
