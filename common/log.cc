// Logger output: one write(2) per line so lines from several threads do not interleave.
#include "common/log.hh"

#include <unistd.h>

#include <string>

namespace cachet::common::log {

std::atomic<int> g_level{static_cast<int>(Level::warn)};

void set_level(Level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }

void write(Level l, std::string_view msg) {
  static constexpr const char* kNames[] = {"error", "warn", "info", "debug", "trace"};
  std::string line = fmt::format("cachet {}: {}\n", kNames[static_cast<int>(l)], msg);
  ssize_t r = ::write(STDERR_FILENO, line.data(), line.size());
  (void)r;
}

}  // namespace cachet::common::log
