// Clocks for the hot path: coarse wall-clock seconds (memcached's exptime unit) and a monotonic
// nanosecond clock, both read through the vDSO without a system call.
#pragma once

#include <cstdint>
#include <ctime>

namespace cachet::common {

// Unix time in whole seconds, from the coarse clock (resolution of a scheduler tick).
inline uint32_t now_unix() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<uint32_t>(ts.tv_sec);
}

// Unix time in milliseconds.
inline uint64_t now_unix_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

inline uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace cachet::common
