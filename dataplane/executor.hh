// The request executor: runs one parsed text-protocol request against the store and appends
// memcached 1.6.18's reply bytes. Shared by every driver (kernel sockets and DPDK).
#pragma once

#include <atomic>
#include <cstdint>

#include "common/byte_buf.hh"
#include "dataplane/meta_executor.hh"
#include "dataplane/protocol/text_parser.hh"
#include "dataplane/settings.hh"
#include "dataplane/stats.hh"
#include "dataplane/store_ops.hh"
#include "drivers/driver.hh"
#include "store/store.hh"

namespace cachet::dataplane {

// What every worker's executor shares. Owned by the Server (or a test); outlives the executors.
struct ExecShared {
  ExecShared(store::Store& st, Settings& se, StatsBoard& b, uint32_t start_time)
      : store(st), settings(se), board(b), started(start_time) {}

  store::Store& store;
  Settings& settings;  // `verbosity` writes settings.verbosity (through std::atomic_ref)
  StatsBoard& board;
  std::atomic<const drivers::Driver*> driver{nullptr};  // for connection and byte counters
  uint32_t started;                                     // unix time reported as uptime 0
};

// One worker's executor. Not thread safe: used only by its worker's thread.
class Executor {
 public:
  enum class After : uint8_t { keep, close };

  Executor(ExecShared& shared, unsigned worker);

  // Runs req and appends its reply to out (nothing when the request has noreply, as memcached).
  // Returns close when the connection must be closed once out is sent (quit).
  After execute(const text::Request& req, common::ByteBuf& out);

  // The parser's limit: the largest value the store takes for a key of key_len bytes.
  size_t value_max(size_t key_len) const { return shared_.store.value_max(key_len); }

  WorkerStats& stats() { return stats_; }

 private:
  void retrieve(const text::Request& req, common::ByteBuf& out);
  void update(const text::Request& req, common::ByteBuf& out);
  void arithmetic(const text::Request& req, common::ByteBuf& out);
  void stats_cmd(const text::Request& req, common::ByteBuf& out);
  void reply(const text::Request& req, common::ByteBuf& out, std::string_view line);
  // The store calls with their counters, shared with the other protocols' executors.
  StoreOps ops() { return StoreOps(store_, worker_, stats_); }

  ExecShared& shared_;
  store::Store& store_;
  store::Worker& worker_;
  WorkerStats& stats_;
  MetaExecutor meta_;  // mg ms md ma me
};

}  // namespace cachet::dataplane
