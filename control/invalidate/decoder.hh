// The decode stage: pgoutput messages in stream order become units (committed transactions,
// parts of large ones, non-transactional key messages) holding the rule field values of each
// row change and the tokens of each key message. Stateful (relation cache, the open
// transaction), so it runs serially.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "control/invalidate/pgoutput.hh"
#include "control/invalidate/rules.hh"
#include "control/invalidate/stats.hh"
#include "control/invalidate/unit.hh"

namespace cachet::invalidate {

// Lets through `burst` log lines per second and counts the rest (one line says how many), so a
// flood of bad input cannot flood the log.
class LogLimiter {
 public:
  explicit LogLimiter(int burst = 5) : burst_(burst) {}
  bool allow();

 private:
  int burst_;
  int64_t window_start_ms_ = 0;
  int in_window_ = 0;
  int64_t suppressed_ = 0;
};

// s for a log line: control bytes and backslashes as \xNN, cut after `limit` bytes.
std::string printable(std::string_view s, size_t limit = 80);

class Decoder {
 public:
  // rule_stats has one entry per rule of `rules`.
  Decoder(std::shared_ptr<const RuleSet> rules, std::string message_prefix, uint64_t unit_rows,
          Stats* stats, std::vector<RuleStats>* rule_stats);

  // Consumes one pgoutput message; completed units are appended to *out. False (with *error)
  // on a malformed message: the stream must be restarted (reset()) from the slot.
  bool feed(std::string_view msg, std::vector<UnitPtr>* out, std::string* error);

  // Forgets the open transaction and the relations (after the stream is restarted).
  void reset();

  uint64_t next_seq() const { return next_seq_; }

 private:
  struct Relation {
    std::string schema, name;
    int rule = -1;
    std::vector<int> column_of_field;  // per rule field: its column, -1 when missing
    std::vector<bool> identity;        // per rule field: part of the replica identity
  };
  void on_relation(const pg::Relation& r);
  void on_change(const pg::Change& c);
  void on_message(const pg::Message& m);
  void start_unit();
  void close_unit(std::vector<UnitPtr>* out);

  std::shared_ptr<const RuleSet> rules_;
  std::string prefix_;
  UnitCounter counter_;
  LogLimiter limiter_;
  Stats* stats_;
  std::vector<RuleStats>* rule_stats_;
  std::unordered_map<uint32_t, Relation> relations_;
  UnitPtr cur_;
  int64_t txn_time_us_ = 0;
  uint64_t next_seq_ = 0;
};

// Splits a key message's content on ASCII whitespace into tokens.
std::vector<std::string> split_key_message(std::string_view content);

}  // namespace cachet::invalidate
