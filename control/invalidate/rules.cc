// Compiling [[rule]]s: templates parsed once, the union of their columns indexed.
#include "control/invalidate/rules.hh"

#include <algorithm>

namespace cachet::invalidate {

int RuleSet::find(const std::string& schema, const std::string& table) const {
  for (size_t i = 0; i < rules.size(); ++i)
    if (rules[i].schema == schema && rules[i].table == table) return static_cast<int>(i);
  return -1;
}

std::shared_ptr<const RuleSet> compile_rules(const std::vector<RuleConfig>& configs) {
  auto set = std::make_shared<RuleSet>();
  for (const RuleConfig& rc : configs) {
    CompiledRule r;
    r.schema = rc.schema;
    r.table = rc.table;
    for (const std::string& text : rc.keys) {
      KeyTemplate t;
      std::string ignored;
      if (!KeyTemplate::parse(text, &t, &ignored)) continue;  // parse_config refused it already
      std::vector<size_t> idx;
      for (const std::string& f : t.fields()) {
        auto it = std::find(r.fields.begin(), r.fields.end(), f);
        idx.push_back(static_cast<size_t>(it - r.fields.begin()));
        if (it == r.fields.end()) r.fields.push_back(f);
      }
      r.field_index.push_back(std::move(idx));
      r.templates.push_back(std::move(t));
    }
    set->rules.push_back(std::move(r));
  }
  return set;
}

}  // namespace cachet::invalidate
