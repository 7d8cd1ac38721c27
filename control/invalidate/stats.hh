// The daemon's counters, one table each for the whole daemon, per rule (table) and per server,
// updated from any thread (relaxed atomics) and exported by metrics.cc as Prometheus text and
// by the status socket as JSON.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace cachet::invalidate {

class Counter {
 public:
  void add(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  void set(uint64_t n) { v_.store(n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// X(member, metric name, type, help)
#define CACHET_INVALIDATE_STATS(X)                                                               \
  X(commits, "commits_total", "counter", "Committed transactions read from the slot.")           \
  X(units, "units_total", "counter", "Units decoded (transactions, parts of large ones, "         \
    "non-transactional messages).")                                                             \
  X(messages, "messages_total", "counter", "Key messages (pg_logical_emit_message with the "     \
    "configured prefix) decoded.")                                                              \
  X(messages_rejected, "messages_rejected_total", "counter",                                     \
    "Key messages with no valid key at all (not keys).")                                        \
  X(keys, "keys_total", "counter", "Valid keys produced (rows and messages), before merging.")   \
  X(keys_rejected, "keys_rejected_total", "counter",                                             \
    "Keys not sent: empty, over 250 bytes, or with a space or control character.")              \
  X(rows_unmapped, "rows_unmapped_total", "counter",                                             \
    "Row changes of published tables that no rule maps.")                                       \
  X(decode_errors, "decode_errors_total", "counter",                                             \
    "Malformed replication messages (the connection is restarted).")                            \
  X(merged, "merged_total", "counter", "Deletes merged with a delete of the same key waiting "   \
    "for the same packet.")                                                                     \
  X(redelivered, "redelivered_deletes_total", "counter",                                         \
    "Deletes sent again after a restart for transactions already delivered before it.")         \
  X(audit_samples, "audit_samples_total", "counter", "Deletes the auditor sampled.")             \
  X(audit_checked, "audit_checked_total", "counter", "Sampled deletes the auditor checked.")     \
  X(audit_misses, "audit_misses_total", "counter",                                               \
    "Sampled keys a server still held, stored before the delete was sent.")                     \
  X(audit_skipped, "audit_skipped_total", "counter",                                             \
    "Samples not checked: their server was down or spooling at check time.")                    \
  X(source_errors, "source_errors_total", "counter", "Database connection failures.")

struct Stats {
#define CACHET_X(m, name, type, help) Counter m;
  CACHET_INVALIDATE_STATS(CACHET_X)
#undef CACHET_X

  // Gauges.
  Counter source_up;      // 1 while the replication stream runs
  Counter received_lsn;   // end of the last message read
  Counter confirmed_lsn;  // the position reported to PostgreSQL as flushed
  Counter wal_end;        // the server's WAL end, from its last frame
  Counter inflight;       // units read and not yet settled

  // Batch sizes: deletes per packet, buckets 1, 2, 4, ... 4096 and +Inf.
  static constexpr std::array<uint64_t, 13> kBatchBuckets = {1,   2,   4,    8,    16,   32,  64,
                                                             128, 256, 512, 1024, 2048, 4096};
  std::array<Counter, kBatchBuckets.size() + 1> batch_hist;
  Counter batch_sum, batch_count;
  void record_batch(uint64_t keys);
};

struct RuleStats {
  Counter rows;        // row changes decoded
  Counter keys;        // keys produced
  Counter unresolved;  // keys that could not be named (REPLICA IDENTITY too narrow, TOAST)
  Counter truncates;   // TRUNCATEs seen (no keys can be named)
};

struct ServerStats {
  Counter up;              // gauge: connected and answering
  Counter deletes_sent;    // delete lines written
  Counter deleted, not_found;
  Counter packets;         // batches written (one write each)
  Counter failures;        // times the server was marked down
  Counter spooled;         // deletes written to the spool
  Counter replayed;        // deletes replayed from the spool and acknowledged
  Counter spool_bytes;     // gauge: bytes waiting in the spool
  Counter spool_deletes;   // gauge: deletes waiting in the spool
  Counter spool_full;      // gauge: 1 while the spool is at its bound
  Counter holdoff_refused; // hold-off deletes the server refused (sent again plain)
};

}  // namespace cachet::invalidate
