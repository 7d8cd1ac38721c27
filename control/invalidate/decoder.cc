// Decoding pgoutput into units. What a row change contributes, per rule field:
//   new row:  its value; an unchanged TOASTed value ('u') is taken from the old row if known.
//   old row:  UPDATE/DELETE with an old tuple ('K' identity columns, 'O' whole row): its value,
//             and "unknown" for the columns a 'K' tuple leaves out; UPDATE without an old tuple
//             (identity unchanged): the new value for identity columns, unknown for the others.
// A template needing an unknown value cannot name its key: the mapper counts it as unresolved.
#include "control/invalidate/decoder.hh"

#include "common/clock.hh"
#include "common/log.hh"

namespace cachet::invalidate {

namespace log = common::log;

Decoder::Decoder(std::shared_ptr<const RuleSet> rules, std::string message_prefix,
                 uint64_t unit_rows, Stats* stats, std::vector<RuleStats>* rule_stats)
    : rules_(std::move(rules)),
      prefix_(std::move(message_prefix)),
      counter_(unit_rows),
      stats_(stats),
      rule_stats_(rule_stats) {}

void Decoder::reset() {
  relations_.clear();
  cur_.reset();
  counter_.reset();
}

void Decoder::start_unit() {
  cur_ = std::make_shared<Unit>();
  cur_->commit_time_us = txn_time_us_;
}

void Decoder::close_unit(std::vector<UnitPtr>* out) {
  if (!cur_) start_unit();
  cur_->seq = next_seq_++;
  stats_->units.add();
  out->push_back(std::move(cur_));
  cur_.reset();
}

bool Decoder::feed(std::string_view msg, std::vector<UnitPtr>* out, std::string* error) {
  // The unit boundary first: the reader counted it against the budget whatever follows.
  const bool closes = counter_.feed(msg.data(), msg.size());
  pg::Decoded d;
  if (!pg::parse_message(msg, &d, error)) {
    stats_->decode_errors.add();
    if (closes) close_unit(out);  // confirms nothing (no end LSN); the stream restarts
    return false;
  }
  if (auto* b = std::get_if<pg::Begin>(&d)) {
    txn_time_us_ = b->commit_time + pg::kEpochOffsetUs;
    start_unit();
  } else if (auto* c = std::get_if<pg::Commit>(&d)) {
    if (!cur_) start_unit();
    cur_->end_lsn = c->end_lsn;
    cur_->commit = true;
    stats_->commits.add();
  } else if (auto* m = std::get_if<pg::Message>(&d)) {
    if (!counter_.in_txn() && !m->transactional) {
      txn_time_us_ = 0;
      start_unit();
    }
    if (!cur_) start_unit();
    on_message(*m);
  } else if (auto* r = std::get_if<pg::Relation>(&d)) {
    on_relation(*r);
  } else if (auto* ch = std::get_if<pg::Change>(&d)) {
    if (!cur_) start_unit();
    on_change(*ch);
  } else if (auto* t = std::get_if<pg::Truncate>(&d)) {
    for (uint32_t id : t->relids) {
      auto it = relations_.find(id);
      if (it == relations_.end() || it->second.rule < 0) continue;
      (*rule_stats_)[it->second.rule].truncates.add();
      log::error("TRUNCATE of {}.{}: its rows' keys cannot be named; invalidate them by other "
                 "means (flush, or emit their keys)", it->second.schema, it->second.name);
    }
  }
  if (closes) {
    close_unit(out);
    if (counter_.in_txn()) start_unit();  // the next part of a large transaction
  }
  return true;
}

void Decoder::on_relation(const pg::Relation& r) {
  Relation rel;
  rel.schema = r.schema.empty() ? "pg_catalog" : r.schema;
  rel.name = r.name;
  rel.rule = rules_->find(rel.schema, rel.name);
  if (rel.rule >= 0) {
    const CompiledRule& rule = rules_->rules[rel.rule];
    for (const std::string& f : rule.fields) {
      int col = -1;
      bool key = false;
      for (size_t i = 0; i < r.columns.size(); ++i)
        if (r.columns[i].name == f) {
          col = static_cast<int>(i);
          key = r.columns[i].key;
        }
      if (col < 0)
        log::error("rule {}: table has no column '{}' (in the replication stream); keys that "
                   "need it are not sent", rule.qualified(), f);
      rel.column_of_field.push_back(col);
      rel.identity.push_back(key || r.replica_identity == 'f');
    }
  }
  relations_[r.id] = std::move(rel);
}

void Decoder::on_change(const pg::Change& c) {
  auto it = relations_.find(c.relid);
  if (it == relations_.end() || it->second.rule < 0) {
    stats_->rows_unmapped.add();
    return;
  }
  const Relation& rel = it->second;
  (*rule_stats_)[rel.rule].rows.add();
  const size_t nf = rel.column_of_field.size();
  auto value_of = [&](const pg::Tuple& t, size_t f) {
    FieldValue v;
    const int col = rel.column_of_field[f];
    if (col < 0 || static_cast<size_t>(col) >= t.size()) return v;  // unknown
    const pg::Value& pv = t[col];
    if (pv.kind == 't' || pv.kind == 'b') {
      v.state = FieldValue::text;
      v.value = std::string(pv.data);
    } else if (pv.kind == 'n') {
      v.state = FieldValue::null;
    }
    return v;
  };
  RowVersions row;
  row.rule = rel.rule;
  std::vector<FieldValue> old_v;
  if (c.old_kind) {
    old_v.resize(nf);
    for (size_t f = 0; f < nf; ++f) {
      old_v[f] = value_of(c.old_row, f);
      // A 'K' tuple sends NULL for the columns outside the replica identity.
      if (c.old_kind == 'K' && !rel.identity[f]) old_v[f] = FieldValue{};
    }
  }
  if (c.op != 'D') {
    std::vector<FieldValue> new_v(nf);
    for (size_t f = 0; f < nf; ++f) {
      new_v[f] = value_of(c.new_row, f);
      const int col = rel.column_of_field[f];
      const bool unchanged_toast = col >= 0 && static_cast<size_t>(col) < c.new_row.size() &&
                                   c.new_row[col].kind == 'u';
      if (unchanged_toast && !old_v.empty()) new_v[f] = old_v[f];
    }
    if (c.op == 'U' && !c.old_kind) {
      old_v.resize(nf);
      for (size_t f = 0; f < nf; ++f)
        if (rel.identity[f]) old_v[f] = new_v[f];
    }
    row.versions.push_back(std::move(new_v));
  }
  if (!old_v.empty()) row.versions.push_back(std::move(old_v));
  cur_->rows.push_back(std::move(row));
}

void Decoder::on_message(const pg::Message& m) {
  if (m.prefix != prefix_) return;
  stats_->messages.add();
  size_t valid = 0, tokens = 0;
  for (std::string& t : split_key_message(m.content)) {
    ++tokens;
    if (auto why = key_problem(t)) {
      stats_->keys_rejected.add();
      if (limiter_.allow())
        log::error("key message at {}: key '{}' is {}; not sent", pg::format_lsn(m.lsn),
                   printable(t), *why);
      continue;
    }
    ++valid;
    cur_->message_keys.push_back(std::move(t));
  }
  if (valid == 0) {
    stats_->messages_rejected.add();
    if (limiter_.allow())
      log::error("key message at {} (prefix '{}', {} bytes, {} tokens) holds no valid key: a "
                 "message is memcache keys separated by whitespace",
                 pg::format_lsn(m.lsn), m.prefix, m.content.size(), tokens);
  }
}

bool LogLimiter::allow() {
  const int64_t now = static_cast<int64_t>(common::mono_ns() / 1000000);
  if (now - window_start_ms_ >= 1000) {
    if (suppressed_ > 0) log::warn("{} similar errors not logged in the last second", suppressed_);
    window_start_ms_ = now;
    in_window_ = 0;
    suppressed_ = 0;
  }
  if (++in_window_ <= burst_) return true;
  ++suppressed_;
  return false;
}

std::string printable(std::string_view s, size_t limit) {
  std::string out;
  for (unsigned char c : s.substr(0, limit)) {
    if (c < 0x20 || c == 0x7f || c == '\\') out += fmt::format("\\x{:02x}", c);
    else out.push_back(static_cast<char>(c));
  }
  if (s.size() > limit) out += fmt::format("...({} bytes)", s.size());
  return out;
}

namespace {
bool is_separator(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
}  // namespace

std::vector<std::string> split_key_message(std::string_view content) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < content.size()) {
    while (i < content.size() && is_separator(content[i])) ++i;
    size_t j = i;
    while (j < content.size() && !is_separator(content[j])) ++j;
    if (j > i) out.emplace_back(content.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace cachet::invalidate
