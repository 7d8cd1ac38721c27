// The request executor: runs one parsed text-protocol request against the store and appends
// memcached 1.6.18's reply bytes. Shared by every driver (kernel sockets and DPDK).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "common/byte_buf.hh"
#include "dataplane/item_rules.hh"
#include "dataplane/lease_executor.hh"
#include "dataplane/maintenance/engine.hh"
#include "dataplane/meta_executor.hh"
#include "dataplane/protocol/text_parser.hh"
#include "dataplane/settings.hh"
#include "dataplane/stats.hh"
#include "dataplane/tunables.hh"
#include "drivers/driver.hh"
#include "store/store.hh"

namespace cachet::dataplane {

// What every worker's executor shares. Owned by the Server (or a test); outlives the executors.
struct ExecShared {
  ExecShared(store::Store& st, const Settings& se, Tunables& t, StatsBoard& b,
             uint32_t start_time)
      : store(st), settings(se), tunables(t), board(b), started(start_time) {}

  store::Store& store;
  const Settings& settings;  // as started
  Tunables& tunables;        // changed by `verbosity`, `slabs automove` and `tunable`
  StatsBoard& board;
  // The drivers that call this Server (at most two: DPDK and the kernel path beside it), for
  // their counters in `stats`; `base` is the Handler's id of the driver's worker 0.
  struct DriverSlot {
    std::atomic<const drivers::Driver*> driver{nullptr};
    std::atomic<unsigned> base{0};
  };
  std::array<DriverSlot, 2> drivers;
  // The maintenance engine (`slabs reassign`, its stats); none in tests that run without one.
  std::atomic<maintenance::Engine*> maintenance{nullptr};
  uint32_t started;  // unix time reported as uptime 0
};

// Keys of a burst of requests and their hashes, computed once by the burst prefetch
// (Server::prefetch), in request order; `at` is the executor's cursor.
struct KeyHints {
  static constexpr size_t kMax = 512;
  const void* owner = nullptr;  // the driver's burst they belong to
  std::string_view keys[kMax];
  uint64_t hashes[kMax];
  size_t n = 0;
  size_t at = 0;
};

// How much one request may append to out. A get of many keys stops after the key that takes
// out to out_limit: with `resume` (a stream), it records where in the key list it stopped
// (0 when done) and returns suspended, and the caller runs the same request again once out
// has drained, from there, so that a short request naming a large item many times never
// holds more than out_limit plus one item (memcached streams such a reply from its items);
// without (a datagram, whose reply is cut at its size anyway), the reply just ends there.
struct ExecLimit {
  size_t out_limit = SIZE_MAX;
  size_t* resume = nullptr;
};

// One worker's executor. Not thread safe: used only by its worker's thread.
class Executor {
 public:
  // keep: go on; close: close once out is sent (quit); suspended: a multi-key get stopped at
  // its output limit (see ExecLimit).
  enum class After : uint8_t { keep, close, suspended };

  Executor(ExecShared& shared, unsigned worker);

  // Runs req and appends its reply to out (nothing when the request has noreply, as memcached).
  // Returns close when the connection must be closed once out is sent (quit). admin: the
  // request came over the admin socket (only there does `tunable` exist).
  After execute(const text::Request& req, common::ByteBuf& out, bool admin = false,
                ExecLimit limit = {});

  // The hashes of the keys the next requests name, in order, computed by a burst prefetch
  // (nullptr: none): a key found there, at or after the cursor, is not hashed again. The keys
  // must be views of the very bytes the requests are parsed from, and stay valid until the
  // requests have run or hint() is called again.
  void hint(KeyHints* h) { hints_ = h; }

  // The parser's limit: the largest value the store takes for a key of key_len bytes.
  size_t value_max(size_t key_len) const { return shared_.store.value_max(key_len); }

  WorkerStats& stats() { return stats_; }
  ItemRules& rules() { return rules_; }

 private:
  // True when it stopped at limit.out_limit before the last key (see ExecLimit).
  bool retrieve(const text::Request& req, common::ByteBuf& out, ExecLimit limit);
  void update(const text::Request& req, common::ByteBuf& out);
  void arithmetic(const text::Request& req, common::ByteBuf& out);
  void stats_cmd(const text::Request& req, common::ByteBuf& out);
  void tunable_cmd(const text::Request& req, common::ByteBuf& out);
  void reply(const text::Request& req, common::ByteBuf& out, std::string_view line);
  // The key's hash: from the hint when the prefetch computed it, else computed now.
  uint64_t hash_of(std::string_view key) {
    if (hints_) {
      for (size_t i = hints_->at; i < hints_->n; ++i) {
        if (hints_->keys[i].data() == key.data() && hints_->keys[i].size() == key.size()) {
          hints_->at = i + 1;
          return hints_->hashes[i];
        }
      }
    }
    return store::Store::hash(key);
  }

  ExecShared& shared_;
  store::Store& store_;
  WorkerStats& stats_;
  ItemRules rules_;     // memcached's item rules, shared with the other executors
  MetaExecutor meta_;   // mg ms md ma me
  LeaseExecutor lease_;  // lease-get lease-set metaget
  KeyHints* hints_ = nullptr;
};

}  // namespace cachet::dataplane
