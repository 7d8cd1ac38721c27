// Per-source packet rate limit for one lcore: a token bucket per source address in a small
// direct-mapped table, so a flood from one host cannot starve the others. rate 0 = no limit.
#pragma once

#include <array>
#include <cstdint>

namespace cachet::drivers::dpdk {

class SrcLimiter {
 public:
  SrcLimiter(uint32_t rate_per_s, uint64_t ticks_per_s)
      : rate_(rate_per_s), burst_(rate_per_s / 10 + 32), tps_(ticks_per_s) {}

  // True when the packet from `src` (any 32-bit key) may pass at time `now` (in ticks).
  bool allow(uint32_t src, uint64_t now) {
    if (rate_ == 0) return true;
    Slot& s = slots_[(src * 2654435761u) >> (32 - kBits)];
    if (s.src != src || s.last == 0) {
      s = Slot{src, burst_ * kScale, now};  // a new (or colliding) source starts with a full bucket
    } else if (now != s.last) {  // the packets of one burst share a clock reading
      uint64_t elapsed = now - s.last < tps_ ? now - s.last : tps_;  // a second refills it all
      uint64_t add = static_cast<uint64_t>(static_cast<unsigned __int128>(elapsed) * rate_ * kScale / tps_);
      s.tokens = add >= uint64_t{burst_} * kScale - s.tokens ? uint64_t{burst_} * kScale
                                                            : s.tokens + add;
      if (add) s.last = now;
    }
    if (s.tokens < kScale) return false;
    s.tokens -= kScale;
    return true;
  }

 private:
  static constexpr unsigned kBits = 12;
  static constexpr uint64_t kScale = 1024;  // fixed point: fractions of a token accrue
  struct Slot {
    uint32_t src = 0;
    uint64_t tokens = 0;
    uint64_t last = 0;
  };
  uint32_t rate_, burst_;
  uint64_t tps_;
  std::array<Slot, 1u << kBits> slots_{};
};

}  // namespace cachet::drivers::dpdk
