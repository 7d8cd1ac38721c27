// The batch-size histogram.
#include "control/invalidate/stats.hh"

namespace cachet::invalidate {

void Stats::record_batch(uint64_t keys) {
  size_t i = 0;
  while (i < kBatchBuckets.size() && keys > kBatchBuckets[i]) ++i;
  batch_hist[i].add();
  batch_sum.add(keys);
  batch_count.add();
}

}  // namespace cachet::invalidate
