// The one logger: leveled lines on stderr. The hot path never logs; it counts.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <string_view>

namespace cachet::common::log {

enum class Level : int { error = 0, warn = 1, info = 2, debug = 3, trace = 4 };

// Messages above this level are dropped. memcached's -v/-vv/-vvv map to info/debug/trace.
extern std::atomic<int> g_level;

void set_level(Level l);
// "error", "warn", "info", "debug" or "trace"; false (level unchanged) for anything else.
bool set_level(std::string_view name);
// The name lines start with ("cachet" unless a program sets its own, e.g. "cachet-control").
void set_program(std::string_view name);
void write(Level l, std::string_view msg);

template <class... A>
void emit(Level l, fmt::format_string<A...> f, A&&... a) {
  if (static_cast<int>(l) > g_level.load(std::memory_order_relaxed)) return;
  write(l, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void error(fmt::format_string<A...> f, A&&... a) { emit(Level::error, f, std::forward<A>(a)...); }
template <class... A>
void warn(fmt::format_string<A...> f, A&&... a) { emit(Level::warn, f, std::forward<A>(a)...); }
template <class... A>
void info(fmt::format_string<A...> f, A&&... a) { emit(Level::info, f, std::forward<A>(a)...); }
template <class... A>
void debug(fmt::format_string<A...> f, A&&... a) { emit(Level::debug, f, std::forward<A>(a)...); }

}  // namespace cachet::common::log
