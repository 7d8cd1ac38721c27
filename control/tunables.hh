// The run-time tunables `cachetctl config get|set` reaches: cachet-control's own (the config
// options marked run time) and cachetd's, which are set over the admin socket and read back from
// `stats settings`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/tunables.hh"

namespace cachet::control {

// cachetd's run-time tunables, named dataplane.<name> in the CLI: one row per entry of
// cachetd's own table (CACHET_TUNABLES, dataplane/tunables.hh), read back from `stats settings`
// under the same name and set with the admin-socket command `tunable <name> <value>`. A name
// the running cachetd does not report is not offered (that cachetd cannot change it).
struct DataplaneTunable {
  std::string_view name;          // without "dataplane."
  std::string_view settings_key;  // in `stats settings`
  std::string_view command;       // with {} for the value
  int64_t lo, hi;
  std::string_view description;
  std::string full_name() const { return "dataplane." + std::string(name); }
};

const std::vector<DataplaneTunable>& dataplane_tunables();
const DataplaneTunable* find_dataplane_tunable(std::string_view full_name);

// Checks text as a value of t; false with *error naming the key and the allowed range.
bool parse_tunable_value(const DataplaneTunable& t, std::string_view text, int64_t* v,
                         std::string* error);

// The admin request that sets t to v.
std::string tunable_command(const DataplaneTunable& t, int64_t v);

}  // namespace cachet::control
