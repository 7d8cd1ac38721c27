// cachet-control's log: leveled lines on stderr ("cachet-control info: ..."), one write each.
#pragma once

#include <unistd.h>

#include <atomic>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace cachet::control::clog {

enum class Level : int { error = 0, warn = 1, info = 2, debug = 3 };

inline std::atomic<int> g_level{static_cast<int>(Level::info)};

// "error", "warn", "info" or "debug"; anything else leaves the level as it is.
inline void set_level(std::string_view name) {
  constexpr std::string_view kNames[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; ++i)
    if (kNames[i] == name) g_level.store(i);
}

inline void write_line(Level l, std::string_view msg) {
  constexpr const char* kNames[] = {"error", "warn", "info", "debug"};
  std::string line = fmt::format("cachet-control {}: {}\n", kNames[static_cast<int>(l)], msg);
  ssize_t r = ::write(STDERR_FILENO, line.data(), line.size());
  (void)r;
}

template <class... A>
void emit(Level l, fmt::format_string<A...> f, A&&... a) {
  if (static_cast<int>(l) > g_level.load(std::memory_order_relaxed)) return;
  write_line(l, fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
void error(fmt::format_string<A...> f, A&&... a) { emit(Level::error, f, std::forward<A>(a)...); }
template <class... A>
void warn(fmt::format_string<A...> f, A&&... a) { emit(Level::warn, f, std::forward<A>(a)...); }
template <class... A>
void info(fmt::format_string<A...> f, A&&... a) { emit(Level::info, f, std::forward<A>(a)...); }
template <class... A>
void debug(fmt::format_string<A...> f, A&&... a) { emit(Level::debug, f, std::forward<A>(a)...); }

}  // namespace cachet::control::clog
