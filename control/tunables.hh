// The run-time tunables `cachetctl config get|set` reaches: cachet-control's own (the config
// options marked run time) and cachetd's, which are set over the admin socket and read back from
// `stats settings`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cachet::control {

// cachetd's run-time tunables, named dataplane.<name> in the CLI.
// X(name, settings_key, command, lo, hi, description)
//   settings_key: the `stats settings` line that reports the value; a row whose key the running
//                 cachetd does not report is not offered (that cachetd cannot change it).
//   command:      the admin request that sets it; {} is replaced by the value.
// Rows to add when the dataplane grows them (each goes live by itself once cachetd reports its
// key), e.g.:
//   X(slab_automove, "slab_automove", "slabs automove {}", 0, 1, "slab page rebalancer on/off")
//     -- cachetd already records `slabs automove` and reports slab_automove, but the store's
//        rebalancer does not read it yet: a knob that does nothing is not offered.
//   X(lease_window_s, "lease_window", "lease_window {}", 1, 3600, "lease token window")
//   X(stale_window_s, "stale_window", "stale_window {}", 0, 3600, "stale read window")
//   X(transient_ttl_s, "transient_ttl", "transient_ttl {}", 0, 3600, "transient cache threshold")
#define CACHET_DATAPLANE_TUNABLES(X)                                                 \
  X(verbosity, "verbosity", "verbosity {}", 0, 2,                                   \
    "cachetd log verbosity (memcached's `verbosity`): 0 warnings, 1 info, 2 debug")

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
