// Test fixture for the dataplane: a private store, settings, counters and one executor, and a
// helper that runs text-protocol input through parser and executor as a connection would.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/byte_buf.hh"
#include "dataplane/executor.hh"
#include "dataplane/protocol/text_parser.hh"
#include "dataplane/settings.hh"
#include "dataplane/stats.hh"
#include "store/store.hh"

namespace cachet::dataplane::testing {

class DataplaneTest : public ::testing::Test {
 public:
  void SetUp() override {
    settings.store.memory_mb = 8;
    settings.store.workers = 1;
    settings.net.threads = 1;
    std::string err;
    store = store::Store::open(settings.store, &err);
    ASSERT_TRUE(store) << err;
    board = std::make_unique<StatsBoard>(1);
    tunables = std::make_unique<Tunables>(settings.tunables);
    shared = std::make_unique<ExecShared>(*store, settings, *tunables, *board, 1000);
    exec = std::make_unique<Executor>(*shared, 0);
  }

  // Parses and executes every complete request in `in` (swallowing refused data blocks) and
  // returns the reply bytes. *closed tells whether a request asked to close the connection.
  std::string run(std::string_view in, bool* closed = nullptr) {
    common::ByteBuf out;
    size_t pos = 0;
    if (closed) *closed = false;
    auto vmax = [this](size_t k) { return exec->value_max(k); };
    while (pos < in.size()) {
      text::ParseResult r = text::parse(in.substr(pos), vmax);
      if (r.status != text::Status::ready) {
        if (closed) *closed = r.status == text::Status::close;
        break;
      }
      pos += r.consumed;
      pos += std::min<size_t>(r.swallow, in.size() - pos);
      if (exec->execute(r.req, out, admin) == Executor::After::close) {
        if (closed) *closed = true;
        break;
      }
    }
    return std::string(out.view());
  }

  StatTotals totals() const { return board->totals(); }

  Settings settings;
  bool admin = false;  // run() as over the admin socket
  std::unique_ptr<store::Store> store;
  std::unique_ptr<StatsBoard> board;
  std::unique_ptr<Tunables> tunables;
  std::unique_ptr<ExecShared> shared;
  std::unique_ptr<Executor> exec;
};

// The value of "STAT <name> <value>" in a stats reply, or "" when absent.
inline std::string stat_value(const std::string& reply, const std::string& name) {
  std::string needle = "STAT " + name + " ";
  size_t p = reply.find(needle);
  if (p == std::string::npos) return "";
  p += needle.size();
  return reply.substr(p, reply.find("\r\n", p) - p);
}

}  // namespace cachet::dataplane::testing
