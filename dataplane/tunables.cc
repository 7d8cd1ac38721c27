// The run-time tunables' ranges, their setter and its effects.
#include "dataplane/tunables.hh"

#include <charconv>

#include <fmt/format.h>

#include "common/log.hh"

namespace cachet::dataplane {

namespace {

struct Row {
  std::string_view name;
  int64_t lo, hi;
};
constexpr Row kRows[] = {
#define CACHET_X(name, def, lo, hi, desc) {#name, lo, hi},
    CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
};

}  // namespace

common::log::Level log_level_for(int64_t verbosity) {
  switch (verbosity) {
    case 0: return common::log::Level::warn;
    case 1: return common::log::Level::info;
    case 2: return common::log::Level::debug;
    default: return common::log::Level::trace;
  }
}

bool check_tunable(std::string_view name, int64_t value, std::string* error) {
  for (const Row& r : kRows) {
    if (r.name != name) continue;
    if (value >= r.lo && value <= r.hi) return true;
    *error = fmt::format("{} must be between {} and {}, got {}", name, r.lo, r.hi, value);
    return false;
  }
  *error = fmt::format("no tunable is named '{}'", name);
  return false;
}

Tunables::Tunables(const TunableValues& start) {
#define CACHET_X(name, def, lo, hi, desc) name##_.store(start.name, std::memory_order_relaxed);
  CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
  common::log::set_level(log_level_for(start.verbosity));
}

bool Tunables::set(std::string_view name, std::string_view text, std::string* error) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    *error = fmt::format("{}: '{}' is not a whole number", name, text);
    return false;
  }
  return set(name, v, error);
}

bool Tunables::set(std::string_view name, int64_t value, std::string* error) {
  if (!check_tunable(name, value, error)) return false;
#define CACHET_X(n, def, lo, hi, desc) \
  if (name == #n) n##_.store(value, std::memory_order_relaxed);
  CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
  if (name == "verbosity") common::log::set_level(log_level_for(value));
  return true;
}

TunableValues Tunables::values() const {
  TunableValues v;
#define CACHET_X(name, def, lo, hi, desc) v.name = name();
  CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
  return v;
}

}  // namespace cachet::dataplane
