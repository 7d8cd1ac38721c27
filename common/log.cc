// Logger output: one write(2) per line so lines from several threads do not interleave.
#include "common/log.hh"

#include <unistd.h>

#include <string>

namespace cachet::common::log {

std::atomic<int> g_level{static_cast<int>(Level::warn)};

namespace {
constexpr const char* kNames[] = {"error", "warn", "info", "debug", "trace"};
std::string g_program = "cachet";  // set once at start-up, before threads log
}  // namespace

void set_level(Level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }

bool set_level(std::string_view name) {
  for (int i = 0; i < 5; ++i)
    if (name == kNames[i]) {
      g_level.store(i, std::memory_order_relaxed);
      return true;
    }
  return false;
}

void set_program(std::string_view name) { g_program = name; }

void write(Level l, std::string_view msg) {
  std::string line = fmt::format("{} {}: {}\n", g_program, kNames[static_cast<int>(l)], msg);
  ssize_t r = ::write(STDERR_FILENO, line.data(), line.size());
  (void)r;
}

}  // namespace cachet::common::log
