// The dataplane tunables table and its value checks.
#include "control/tunables.hh"

#include <charconv>

#include <fmt/format.h>

namespace cachet::control {

const std::vector<DataplaneTunable>& dataplane_tunables() {
  static const std::vector<DataplaneTunable> table = {
#define CACHET_X(name, def, lo, hi, desc) \
  DataplaneTunable{#name, #name, "tunable " #name " {}", lo, hi, desc},
      CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
  };
  return table;
}

const DataplaneTunable* find_dataplane_tunable(std::string_view full_name) {
  for (const DataplaneTunable& t : dataplane_tunables())
    if (t.full_name() == full_name) return &t;
  return nullptr;
}

bool parse_tunable_value(const DataplaneTunable& t, std::string_view text, int64_t* v,
                         std::string* error) {
  int64_t x = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || x < t.lo ||
      x > t.hi) {
    *error = fmt::format("{}: '{}' is not an integer from {} to {}", t.full_name(), text, t.lo,
                         t.hi);
    return false;
  }
  *v = x;
  return true;
}

std::string tunable_command(const DataplaneTunable& t, int64_t v) {
  std::string out(t.command);
  auto at = out.find("{}");
  if (at != std::string::npos) out.replace(at, 2, std::to_string(v));
  return out;
}

}  // namespace cachet::control
