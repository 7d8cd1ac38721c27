// Summing and resetting the per-worker counters.
#include "dataplane/stats.hh"

namespace cachet::dataplane {

StatsBoard::StatsBoard(unsigned workers)
    : n_(workers ? workers : 1), slots_(std::make_unique<WorkerStats[]>(n_)) {}

StatTotals StatsBoard::raw() const {
  StatTotals t;
  for (unsigned i = 0; i < n_; ++i) {
#define CACHET_X(name, desc) t.name += slots_[i].name.get();
    CACHET_WORKER_STATS(CACHET_X)
#undef CACHET_X
  }
  return t;
}

StatTotals StatsBoard::totals() const {
  StatTotals t = raw();
  std::lock_guard lock(mu_);
#define CACHET_X(name, desc) t.name = t.name >= base_.name ? t.name - base_.name : 0;
  CACHET_WORKER_STATS(CACHET_X)
#undef CACHET_X
  return t;
}

void StatsBoard::reset() {
  StatTotals t = raw();
  std::lock_guard lock(mu_);
  base_ = t;
}

}  // namespace cachet::dataplane
