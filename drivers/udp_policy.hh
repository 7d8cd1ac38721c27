// The UDP policy every driver applies, one implementation: a per-source packet rate (a token
// bucket per source address in a small direct-mapped table, per worker), a bound on the reply
// bytes one request may cause (amplification), and one table of the reasons a datagram is not
// answered, counted per worker under the same `stats` names on every driver.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common/counter.hh"

namespace cachet::drivers {

// X(name, meaning); `stats` prints udp_drop_<name>. The frame reasons are the dataplane's
// verdict on memcached's frame header (Handler::datagram); the others are this policy's.
#define CACHET_UDP_DROPS(X)                                                                     \
  X(frame_short, "datagrams of 8 bytes or fewer: a frame header and no request")                \
  X(frame_multipart, "requests whose frame header counts more than one datagram (memcached "    \
                     "does not reassemble them)")                                              \
  X(rate_limited, "datagrams from a source over --udp-src-rate")                                \
  X(reply_cut, "reply datagrams not sent: the request's reply passed --udp-reply-max")

enum class UdpDrop : uint8_t {
  none = 0,  // answered
#define CACHET_X(name, desc) name,
  CACHET_UDP_DROPS(CACHET_X)
#undef CACHET_X
  count
};
const char* udp_drop_name(UdpDrop d);

// The policy's knobs (cachetd --udp-src-rate, --udp-reply-max; the --dpdk-* names are aliases).
struct UdpPolicy {
  uint32_t src_rate = 0;             // datagrams per second from one source, per worker; 0 = any
  uint32_t reply_max = 2u << 20;     // reply bytes (frame headers included) sent per request
};

// Drops by reason, summed over workers.
struct UdpDropCounts {
  std::array<uint64_t, static_cast<size_t>(UdpDrop::count)> n{};
  UdpDropCounts& operator+=(const UdpDropCounts& o) {
    for (size_t i = 0; i < n.size(); ++i) n[i] += o.n[i];
    return *this;
  }
};

// Token buckets per source: `rate` datagrams per second with a burst of a tenth of a second
// (plus 32), fractions of a token accruing in fixed point. rate 0 = no limit.
class SrcLimiter {
 public:
  SrcLimiter(uint32_t rate_per_s, uint64_t ticks_per_s)
      : rate_(rate_per_s), burst_(rate_per_s / 10 + 32), tps_(ticks_per_s) {}

  bool limits() const { return rate_ != 0; }
  // True when the datagram from `src` (any 32-bit key) may pass at time `now` (in ticks).
  bool allow(uint32_t src, uint64_t now) {
    if (rate_ == 0) return true;
    Slot& s = slots_[(src * 2654435761u) >> (32 - kBits)];
    if (s.src != src || s.last == 0) {
      s = Slot{src, burst_ * kScale, now};  // a new (or colliding) source starts with a full bucket
    } else if (now != s.last) {  // datagrams that share a clock reading share a refill
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

// One worker's policy and its drop counters (written by the worker, read by stats()).
class UdpGuard {
 public:
  UdpGuard(const UdpPolicy& p, uint64_t ticks_per_s)
      : limiter_(p.src_rate, ticks_per_s), reply_max_(p.reply_max) {}

  // Whether admit() needs a clock reading (callers skip reading the clock otherwise).
  bool limits_rate() const { return limiter_.limits(); }
  // True when a datagram from `src` at `now` (ticks) may be handed to the dataplane; counts
  // the drop otherwise.
  bool admit(uint32_t src, uint64_t now) {
    if (limiter_.allow(src, now)) return true;
    count(UdpDrop::rate_limited);
    return false;
  }
  // Called by a reply sink before each reply datagram of one request; `sent` is the sink's
  // running total (start at 0). True (and `sent` grown) when the datagram may go; otherwise
  // counts it, and every later datagram of the reply is cut too (a reply with a hole in it is
  // of no use to anyone).
  bool reply_fits(size_t& sent, size_t payload) {
    if (sent + payload > reply_max_) {
      sent = reply_max_ + 1;
      count(UdpDrop::reply_cut);
      return false;
    }
    sent += payload;
    return true;
  }
  void count(UdpDrop why) { common::bump(drops_[static_cast<size_t>(why)]); }
  // Adds this worker's counts to `out`; any thread.
  void add_to(UdpDropCounts& out) const {
    for (size_t i = 1; i < drops_.size(); ++i)
      out.n[i] += drops_[i].load(std::memory_order_relaxed);
  }

 private:
  SrcLimiter limiter_;
  size_t reply_max_;
  std::array<std::atomic<uint64_t>, static_cast<size_t>(UdpDrop::count)> drops_{};
};

// A 32-bit rate-limit key for a source address of any family (IPv4 as is, IPv6 folded).
uint32_t udp_source_key(const void* sockaddr, unsigned len);

}  // namespace cachet::drivers
