// Mapping rows to keys. A template whose value is unknown in a row version (see decoder.cc)
// counts as unresolved for its table; a SQL NULL names no key; keys that memcached would refuse
// are counted and logged, never sent.
#include "control/invalidate/mapper.hh"

#include <unordered_set>

#include "common/log.hh"

namespace cachet::invalidate {

namespace log = common::log;

Mapper::Mapper(std::shared_ptr<const RuleSet> rules, std::vector<PoolRoute> routes, Stats* stats,
               std::vector<RuleStats>* rule_stats)
    : rules_(std::move(rules)), routes_(std::move(routes)), stats_(stats), rule_stats_(rule_stats) {}

void Mapper::map(Unit& unit) {
  std::unordered_set<std::string> seen;
  auto add = [&](std::string&& key) {
    if (seen.insert(key).second) unit.keys.push_back(std::move(key));
  };
  std::vector<const std::string_view*> values;
  std::vector<std::string_view> storage;
  for (const RowVersions& row : unit.rows) {
    const CompiledRule& rule = rules_->rules[row.rule];
    RuleStats& rs = (*rule_stats_)[row.rule];
    for (size_t t = 0; t < rule.templates.size(); ++t) {
      for (const std::vector<FieldValue>& version : row.versions) {
        const std::vector<size_t>& idx = rule.field_index[t];
        values.assign(idx.size(), nullptr);
        storage.assign(idx.size(), {});
        bool unknown = false, null = false;
        for (size_t i = 0; i < idx.size(); ++i) {
          const FieldValue& v = version[idx[i]];
          if (v.state == FieldValue::unknown) unknown = true;
          if (v.state == FieldValue::null) null = true;
          storage[i] = v.value;
          if (v.state == FieldValue::text) values[i] = &storage[i];
        }
        if (unknown) {
          rs.unresolved.add();
          std::lock_guard lock(log_mu_);
          if (limiter_.allow())
            log::warn("rule {}: key template '{}' cannot be named for a changed row: PostgreSQL "
                       "did not send every column it needs (ALTER TABLE {} REPLICA IDENTITY FULL "
                       "sends the whole old row)",
                       rule.qualified(), rule.templates[t].text(), rule.qualified());
          continue;
        }
        if (null) continue;
        std::optional<std::string> key = rule.templates[t].expand(values);
        if (!key) continue;
        if (auto why = key_problem(*key)) {
          stats_->keys_rejected.add();
          std::lock_guard lock(log_mu_);
          if (limiter_.allow())
            log::error("rule {}: key '{}' from template '{}' is {}; not sent", rule.qualified(),
                       printable(*key), rule.templates[t].text(), *why);
          continue;
        }
        rs.keys.add();
        add(std::move(*key));
      }
    }
  }
  for (std::string& k : unit.message_keys) add(std::move(k));
  stats_->keys.add(unit.keys.size());
  unit.rows.clear();
  unit.rows.shrink_to_fit();
  unit.message_keys.clear();
  unit.targets.assign(routes_.size(), {});
  for (size_t p = 0; p < routes_.size(); ++p) {
    unit.targets[p].reserve(unit.keys.size());
    for (const std::string& k : unit.keys) unit.targets[p].push_back(routes_[p].server_for(k));
  }
}

}  // namespace cachet::invalidate
