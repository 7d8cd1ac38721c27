// A log-bucketed latency histogram in the manner of HdrHistogram: 128 linear sub-buckets per
// power of two, so any recorded value is reported within 0.8% of itself. Not thread safe;
// each worker owns one and they are merged after the run.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace cachet::perf {

class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = (64 - kSubBits + 1) << kSubBits;

  void record(uint64_t v) {
    ++counts_[index(v)];
    ++count_;
    sum_ += v;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
  }
  void merge(const Histogram& o);

  uint64_t count() const { return count_; }
  uint64_t max() const { return count_ ? max_ : 0; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  // The value at quantile q (0..1): the midpoint of the bucket holding the ceil(q*count)-th
  // smallest value, clamped to [min, max]. 0 when empty.
  uint64_t quantile(double q) const;

  static int index(uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    int e = 63 - std::countl_zero(v);  // e >= kSubBits
    return ((e - kSubBits + 1) << kSubBits) + static_cast<int>((v >> (e - kSubBits)) & (kSub - 1));
  }
  static uint64_t lower_bound(int idx) {
    if (idx < kSub) return static_cast<uint64_t>(idx);
    int e = (idx >> kSubBits) + kSubBits - 1;
    uint64_t sub = static_cast<uint64_t>(idx & (kSub - 1));
    return (kSub + sub) << (e - kSubBits);
  }
  static uint64_t width(int idx) {
    if (idx < kSub) return 1;
    return uint64_t{1} << ((idx >> kSubBits) - 1);
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
};

}  // namespace cachet::perf
