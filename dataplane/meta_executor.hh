// The meta protocol executor: runs mg ms md ma me against the store and appends memcached
// 1.6.18's reply bytes (status code, flags echoed in request order, q suppression).
#pragma once

#include "common/byte_buf.hh"
#include "dataplane/item_rules.hh"
#include "dataplane/protocol/meta_parser.hh"
#include "dataplane/protocol/text_parser.hh"

namespace cachet::dataplane {

// One worker's meta executor. Not thread safe: used only by its worker's thread.
class MetaExecutor {
 public:
  explicit MetaExecutor(ItemRules& rules) : rules_(rules), stats_(rules.stats()) {}

  // Runs a request the text parser marked Cmd::meta (its line, and for ms its data block,
  // bad_chunk or too_large) and appends the reply; nothing where q suppresses it. Counts
  // memcached's per-worker stats for each command.
  void execute(const text::Request& req, common::ByteBuf& out);

 private:
  void get(const meta::Request& m, common::ByteBuf& out);
  void set(const meta::Request& m, const text::Request& req, common::ByteBuf& out);
  void del(const meta::Request& m, common::ByteBuf& out);
  void arith(const meta::Request& m, common::ByteBuf& out);
  void debug(const meta::Request& m, common::ByteBuf& out);

  ItemRules& rules_;
  WorkerStats& stats_;
};

}  // namespace cachet::dataplane
