// cachetd's run-time tunables: one table of name, default, range and meaning. Their start-up
// values come from flags (or cachet-control's config); at run time they change through the
// `tunable` admin command (or memcached's `verbosity`), and `stats settings` reports them.
// The Tunables object is their single owner; the rules read them with relaxed loads.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/log.hh"

namespace cachet::dataplane {

// X(name, default, lo, hi, description). The flag is --<name with '-' for '_'>, except
// verbosity, which memcached's -v counts.
#define CACHET_TUNABLES(X)                                                                   \
  X(verbosity, 0, 0, 3, "log level: 0 warnings, 1 info, 2 debug, 3 trace")                   \
  X(slab_automove, 1, 0, 2,                                                                  \
    "slab page rebalancer (memcached's `slabs automove`): 0 off, 1 age balancing, 2 aggressive") \
  X(slab_automove_interval_ms, 1000, 100, 60000,                                             \
    "milliseconds between the rebalancer's looks at the classes (mode 1)")                    \
  X(slab_automove_threshold, 20, 1, 99,                                                      \
    "percent by which a class's next victim must be younger than the others' average for it " \
    "to get a page (memcached's `slabs automove ratio` is 1 - this / 100)")                   \
  X(leases, 1, 0, 1, "lease-get issues lease tokens; 0: lease-get answers as get does")      \
  X(lease_window, 10, 1, 3600,                                                               \
    "seconds a lease token stays live; other misses of its key then get a hot miss")         \
  X(stale_window, 10, 0, 3600,                                                               \
    "seconds a deleted value stays readable as stale through lease-get; 0 keeps none")        \
  X(holdoff_max, 60, 0, 86400, "longest delete hold-off in seconds; longer ones are clamped")  \
  X(transient_ttl, 60, 0, 3600,                                                              \
    "items stored with a TTL below this many seconds are transient: freed by the transient "  \
    "item cache a second after they expire (metaget is_transient); 0: none")

// Start-up values, plain (Settings holds them).
struct TunableValues {
#define CACHET_X(name, def, lo, hi, desc) int64_t name = def;
  CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
};

// memcached's -v, -vv, -vvv: info, debug, trace; none: warnings and errors.
common::log::Level log_level_for(int64_t verbosity);

// Checks value against name's range; false with *error naming the tunable and its range (or
// saying that no tunable has that name).
bool check_tunable(std::string_view name, int64_t value, std::string* error);

class Tunables {
 public:
  explicit Tunables(const TunableValues& start);

#define CACHET_X(name, def, lo, hi, desc) \
  int64_t name() const { return name##_.load(std::memory_order_relaxed); }
  CACHET_TUNABLES(CACHET_X)
#undef CACHET_X

  // Sets tunable `name` from text (a decimal in its range) and applies its effect (verbosity:
  // the log level). False with *error naming the tunable, nothing changed.
  bool set(std::string_view name, std::string_view text, std::string* error);
  bool set(std::string_view name, int64_t value, std::string* error);
  // The current values as plain numbers.
  TunableValues values() const;

 private:
#define CACHET_X(name, def, lo, hi, desc) std::atomic<int64_t> name##_{def};
  CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
};

}  // namespace cachet::dataplane
