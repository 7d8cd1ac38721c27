// Key and value generation for cachet-load, and request encoding into the send buffer.
#include "perf/loadgen/workload.hh"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace cachet::perf {
namespace {

constexpr uint32_t kPrecomputeLimit = 1u << 22;
constexpr uint64_t kValueSalt = 0x76616c7565ull;  // per-key draws are independent of --seed
constexpr uint64_t kKeySalt = 0x6b6579ull;

// u in (0, 1) from a 64-bit hash.
double open_unit(uint64_t h) {
  return (static_cast<double>(h >> 11) + 0.5) * 0x1p-53;
}

char* write_u32(char* p, uint32_t v) {
  char tmp[10];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *p++ = tmp[--n];
  return p;
}

}  // namespace

double gpd_quantile(double u, double loc, double scale, double shape) {
  if (shape == 0) return loc - scale * std::log1p(-u);
  return loc + scale / shape * (std::pow(1.0 - u, -shape) - 1.0);
}

double gev_quantile(double u, double loc, double scale, double shape) {
  if (shape == 0) return loc - scale * std::log(-std::log(u));
  return loc + scale / shape * (std::pow(-std::log(u), -shape) - 1.0);
}

Workload::Workload(const Options& opt)
    : keys_(opt.keys),
      digits_(static_cast<unsigned>(fmt::formatted_size("{}", opt.keys - 1))),
      key_size_(opt.key_size),
      key_dist_(opt.key_dist),
      value_dist_(opt.value_dist),
      fixed_value_(opt.value_size),
      cap_(opt.dpdk() ? kMaxDpdkValueSize : opt.udp ? kMaxUdpValueSize : kMaxValueSize),
      gets_(opt.gets_cmd) {
  max_value_ = value_dist_ == ValueDist::fixed ? fixed_value_ : cap_;
  if (keys_ <= kPrecomputeLimit) {
    if (value_dist_ == ValueDist::wildcard) {
      sizes_.resize(keys_);
      max_value_ = 0;
      for (uint32_t i = 0; i < keys_; ++i) {
        sizes_[i] = compute_value_size(i);
        max_value_ = std::max(max_value_, sizes_[i]);
      }
    }
    if (key_dist_ == KeyDist::etc) {
      std::vector<uint8_t> lens(keys_);  // key_len() reads key_lens_ once it is filled
      for (uint32_t i = 0; i < keys_; ++i) lens[i] = static_cast<uint8_t>(key_len(i));
      key_lens_ = std::move(lens);
    }
  }
  fill_.resize(max_value_);
  for (uint32_t i = 0; i < max_value_; ++i) fill_[i] = static_cast<char>('a' + i % 26);
}

uint32_t Workload::compute_value_size(uint32_t idx) const {
  if (value_dist_ == ValueDist::fixed) return fixed_value_;
  double v =
      gpd_quantile(open_unit(mix64(idx ^ (kValueSalt << 32))), 0.0, kEtcValueScale, kEtcValueShape);
  return static_cast<uint32_t>(std::clamp(std::llround(v), 1LL, static_cast<long long>(cap_)));
}

unsigned Workload::key_len(uint32_t idx) const {
  if (key_dist_ == KeyDist::fixed) return key_size_;
  if (!key_lens_.empty()) return key_lens_[idx];
  double v = gev_quantile(open_unit(mix64(idx ^ (kKeySalt << 32))), kEtcKeyLoc, kEtcKeyScale,
                          kEtcKeyShape);
  return static_cast<unsigned>(std::clamp(std::llround(v), static_cast<long long>(digits_ + 1),
                                          static_cast<long long>(kMaxKeySize)));
}

char* Workload::write_key(uint32_t idx, char* p) const {
  unsigned len = key_len(idx);
  *p++ = 'k';
  for (unsigned i = digits_; i > 0; --i) {
    p[i - 1] = static_cast<char>('0' + idx % 10);
    idx /= 10;
  }
  p += digits_;
  std::memset(p, 'x', len - 1 - digits_);
  return p + (len - 1 - digits_);
}

bool Workload::key_equals(uint32_t idx, std::string_view key) const {
  if (key.size() != key_len(idx)) return false;
  char buf[kMaxKeySize];
  write_key(idx, buf);
  return std::memcmp(buf, key.data(), key.size()) == 0;
}

void Workload::encode_get(const uint32_t* keys, unsigned n, common::ByteBuf& out) const {
  char* start = out.prepare(5 + n * (kMaxKeySize + 1) + 2);
  char* p = start;
  std::memcpy(p, gets_ ? "gets" : "get", gets_ ? 4 : 3);
  p += gets_ ? 4 : 3;
  for (unsigned i = 0; i < n; ++i) {
    *p++ = ' ';
    p = write_key(keys[i], p);
  }
  *p++ = '\r';
  *p++ = '\n';
  out.commit(static_cast<size_t>(p - start));
}

void Workload::encode_set(uint32_t key, common::ByteBuf& out) const {
  uint32_t n = value_size(key);
  char* start = out.prepare(4 + kMaxKeySize + 7 + 10 + 2 + n + 2);
  char* p = start;
  std::memcpy(p, "set ", 4);
  p = write_key(key, p + 4);
  std::memcpy(p, " 0 0 ", 5);
  p = write_u32(p + 5, n);
  *p++ = '\r';
  *p++ = '\n';
  std::memcpy(p, fill_.data(), n);
  p += n;
  *p++ = '\r';
  *p++ = '\n';
  out.commit(static_cast<size_t>(p - start));
}

}  // namespace cachet::perf
