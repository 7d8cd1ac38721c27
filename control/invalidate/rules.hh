// The [[rule]] mappings compiled for the pipeline: each table's key templates and the union of
// the columns they name, plus the row values the decoder hands to the mapper.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/invalidate/config.hh"
#include "control/invalidate/key_template.hh"

namespace cachet::invalidate {

struct CompiledRule {
  std::string schema, table;
  std::vector<KeyTemplate> templates;
  std::vector<std::string> fields;              // every column any template names, once
  std::vector<std::vector<size_t>> field_index;  // per template: its fields in `fields`
  std::string qualified() const { return schema + "." + table; }
};

struct RuleSet {
  std::vector<CompiledRule> rules;
  // The rule for schema.table, or -1.
  int find(const std::string& schema, const std::string& table) const;
};

// Compiles the config's rules (their templates were checked when the config was read).
std::shared_ptr<const RuleSet> compile_rules(const std::vector<RuleConfig>& rules);

// A column value in one version (old or new) of a row: its text, SQL NULL (no key), or unknown
// (not sent by PostgreSQL under the table's REPLICA IDENTITY: the key cannot be named).
struct FieldValue {
  enum State : uint8_t { text, null, unknown } state = unknown;
  std::string value;
};

// One row change of a ruled table: the rule's field values of the old and/or new row.
struct RowVersions {
  int rule = -1;
  std::vector<std::vector<FieldValue>> versions;  // one or two, each aligned with rule.fields
};

}  // namespace cachet::invalidate
