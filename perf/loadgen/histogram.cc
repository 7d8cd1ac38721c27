// Histogram's slow paths: merging workers' histograms and reading quantiles.
#include "perf/loadgen/histogram.hh"

#include <algorithm>
#include <cmath>

namespace cachet::perf {

void Histogram::merge(const Histogram& o) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  max_ = std::max(max_, o.max_);
  min_ = std::min(min_, o.min_);
}

uint64_t Histogram::quantile(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * count_));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      uint64_t mid = lower_bound(i) + width(i) / 2;
      return std::clamp(mid, min(), max());
    }
  }
  return max();
}

}  // namespace cachet::perf
