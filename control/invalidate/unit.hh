// A unit of work through the pipeline: one committed transaction (or a part of a large one, or
// one non-transactional message), from the decoder to the settlement of its deletes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/invalidate/rules.hh"

namespace cachet::invalidate {

struct Unit {
  uint64_t seq = 0;             // contiguous from 0 in stream order (the sequencer's order)
  uint64_t end_lsn = 0;         // the commit's end LSN on a transaction's last unit, else 0
  int64_t commit_time_us = 0;   // Unix microseconds, 0 when unknown
  bool commit = false;          // this unit ends a transaction
  // Filled by the decoder:
  std::vector<RowVersions> rows;
  std::vector<std::string> message_keys;  // the valid keys of key messages
  // Filled by the mapper: unique valid keys and, per pool, the server of each key.
  std::vector<std::string> keys;
  std::vector<std::vector<uint32_t>> targets;
};
using UnitPtr = std::shared_ptr<Unit>;

// Unit boundaries, one rule shared by the reader (which counts units against the in-flight
// budget before it hands messages on) and the decoder (which builds them): a unit ends at a
// Commit, at a non-transactional message outside a transaction, or after `unit_rows` row
// changes or transactional messages of one transaction.
class UnitCounter {
 public:
  explicit UnitCounter(uint64_t unit_rows) : unit_rows_(unit_rows ? unit_rows : 1) {}
  // Feeds one pgoutput message; true when the message closes a unit.
  bool feed(const std::string& msg) { return feed(msg.data(), msg.size()); }
  bool feed(const char* msg, size_t size) {
    if (size == 0) return false;
    switch (msg[0]) {
      case 'B': in_txn_ = true; rows_ = 0; return false;
      case 'C': in_txn_ = false; rows_ = 0; return true;
      case 'M':
        if (!in_txn_) return true;
        [[fallthrough]];
      case 'I': case 'U': case 'D':
        if (++rows_ < unit_rows_) return false;
        rows_ = 0;
        return true;
      default: return false;
    }
  }
  bool in_txn() const { return in_txn_; }
  void reset() { in_txn_ = false; rows_ = 0; }

 private:
  uint64_t unit_rows_;
  uint64_t rows_ = 0;
  bool in_txn_ = false;
};

}  // namespace cachet::invalidate
