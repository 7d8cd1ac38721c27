// The sweep schedule (see sweep.hh).
#include "dataplane/maintenance/sweep.hh"

#include <algorithm>

namespace cachet::dataplane::maintenance {

namespace {

// The share of bin b (remaining TTLs in [2^b, 2^(b+1)) s; bin 0 from 0) dead after dt seconds.
double bin_dead(unsigned b, double dt) {
  const double lo = b == 0 ? 0.0 : static_cast<double>(uint64_t{1} << b);
  const double hi = static_cast<double>(uint64_t{2} << b);
  return std::clamp((dt - lo) / (hi - lo), 0.0, 1.0);
}

}  // namespace

SweepPlan::ClassPlan& SweepPlan::plan(unsigned cls) {
  if (cls >= plans_.size()) plans_.resize(cls + 1);
  return plans_[cls];
}

void SweepPlan::note_flush(uint32_t oldest_live, uint64_t oldest_cas) {
  if (oldest_live == flush_live_ && oldest_cas == flush_cas_) return;
  flush_live_ = oldest_live;
  flush_cas_ = oldest_cas;
  flush_pending_ = oldest_live != 0;
  flush_at_ = oldest_live;  // items die once now >= oldest_live
}

double SweepPlan::expected_dead(const store::ClassSample& c, uint64_t now_ms) const {
  if (c.id >= plans_.size()) return 0;
  const ClassPlan& p = plans_[c.id];
  if (p.flushed) return static_cast<double>(c.items);
  const double dt = static_cast<double>(now_ms - p.last_ms) / 1000.0;
  double seen = 0, dead = 0, dead_half = 0;
  for (unsigned b = 0; b < store::kTtlBins; ++b) {
    const double n = static_cast<double>(p.seen.ttl[b]);
    seen += n;
    dead += n * bin_dead(b, dt);
    dead_half += n * bin_dead(b, dt / 2);
  }
  // Items written with a TTL since: on average dt/2 old, with the TTLs the sweep saw.
  const double fresh = static_cast<double>(c.ttl_sets >= p.ttl_sets ? c.ttl_sets - p.ttl_sets
                                                                    : c.ttl_sets);
  const double share = seen > 0 ? dead_half / seen : std::min(1.0, dt / 2 / kDefaultTtlS);
  return dead + fresh * share;
}

unsigned SweepPlan::due(const std::vector<store::ClassSample>& classes, uint32_t now_s,
                        uint64_t now_ms) {
  if (flush_pending_ && now_s >= flush_at_) {
    flush_pending_ = false;
    ++flushes_;
    for (const store::ClassSample& c : classes)
      if (c.items > 0) plan(c.id).flushed = true;
  }
  unsigned best = 0;
  double best_share = 0;
  for (const store::ClassSample& c : classes) {
    if (c.items == 0) continue;
    ClassPlan& p = plan(c.id);
    double share;
    if (p.flushed || !p.known) {
      share = 2.0;  // everything (or nothing known yet): first
    } else {
      const uint64_t gap = now_ms - p.last_ms;
      if (gap < kMinGapMs) continue;
      const double dead = expected_dead(c, now_ms);
      const double used = static_cast<double>(std::max<uint64_t>(c.used_chunks, 1));
      const bool has_ttl = c.ttl_sets > p.ttl_sets ||
                           p.seen.checked > p.seen.no_ttl + p.seen.reclaimed;
      const bool enough = dead >= kMinDead && dead >= kDeadShare * used;
      if (!enough && !(has_ttl && gap >= kMaxGapMs)) continue;
      share = std::min(1.0, dead / used);
    }
    if (!best || share > best_share) {
      best = c.id;
      best_share = share;
    }
  }
  return best;
}

void SweepPlan::swept(unsigned cls, const store::SweepTally& t, uint64_t ttl_sets,
                      uint64_t start_ms, uint64_t flushes) {
  ClassPlan& p = plan(cls);
  p.known = true;
  if (flushes == flushes_) p.flushed = false;  // else a flush came during the sweep: again
  p.last_ms = start_ms;
  p.ttl_sets = ttl_sets;
  p.seen = t;
}

}  // namespace cachet::dataplane::maintenance
