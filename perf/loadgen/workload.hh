// What cachet-load asks for: the key space, each key's bytes and value size (fixed or Facebook
// ETC/"wildcard"), and the text-protocol encoding of get, multiget and set requests.
// Immutable after construction, so all worker threads share one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_buf.hh"
#include "perf/loadgen/options.hh"

namespace cachet::perf {

// splitmix64's finalizer: a cheap, well-mixed 64-bit hash.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A small fast PRNG (splitmix64 sequence); one per worker thread.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() { return mix64(s_ += 0x9e3779b97f4a7c15ull); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }  // [0, 1)
  uint32_t below(uint32_t n) {                                              // [0, n)
    return static_cast<uint32_t>(((next() >> 32) * static_cast<uint64_t>(n)) >> 32);
  }

 private:
  uint64_t s_;
};

// ETC's published fits (Atikoglu et al., SIGMETRICS 2012).
inline constexpr double kEtcValueScale = 214.476, kEtcValueShape = 0.348238;  // GPD, location 0
inline constexpr double kEtcKeyLoc = 30.7984, kEtcKeyScale = 8.20449, kEtcKeyShape = 0.078688;

// Inverse CDFs, for u in (0, 1).
double gpd_quantile(double u, double loc, double scale, double shape);
double gev_quantile(double u, double loc, double scale, double shape);

class Workload {
 public:
  explicit Workload(const Options& opt);

  uint32_t keys() const { return keys_; }
  // Key idx is 'k', the index zero-padded to a fixed width, then 'x' up to its length; so
  // every key is distinct and its length depends only on idx.
  unsigned key_len(uint32_t idx) const;
  bool key_equals(uint32_t idx, std::string_view key) const;
  // The value size every set of key idx uses: fixed, or drawn once per key from the ETC GPD
  // (depends only on idx, never on --seed, so runs against one server agree). With --udp the
  // draw is capped at kMaxUdpValueSize so that a set fits one datagram, and over DPDK at
  // kMaxDpdkValueSize so that it fits one Ethernet frame.
  uint32_t value_size(uint32_t idx) const {
    return sizes_.empty() ? compute_value_size(idx) : sizes_[idx];
  }
  uint32_t max_value_size() const { return max_value_; }
  // The bytes of every value of length n this generator stores (n <= max_value_size()).
  std::string_view value_bytes(uint32_t n) const { return std::string_view(fill_).substr(0, n); }

  // Appends `get k1 .. kn\r\n` (or `gets`).
  void encode_get(const uint32_t* keys, unsigned n, common::ByteBuf& out) const;
  // Appends `set <key> 0 0 <bytes>\r\n<value>\r\n`.
  void encode_set(uint32_t key, common::ByteBuf& out) const;

 private:
  char* write_key(uint32_t idx, char* dst) const;
  uint32_t compute_value_size(uint32_t idx) const;

  uint32_t keys_;
  unsigned digits_;
  unsigned key_size_;
  KeyDist key_dist_;
  ValueDist value_dist_;
  uint32_t fixed_value_;
  uint32_t max_value_;
  uint32_t cap_;  // largest drawn size: 1 MB, or what fits a UDP request datagram
  bool gets_;
  std::vector<uint32_t> sizes_;    // precomputed value sizes (wildcard, key spaces up to 4M)
  std::vector<uint8_t> key_lens_;  // precomputed key lengths (etc, key spaces up to 4M)
  std::string fill_;               // value bytes, max_value_ long
};

}  // namespace cachet::perf
