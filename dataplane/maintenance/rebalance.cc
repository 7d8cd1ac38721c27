// The rebalancer's choice (see rebalance.hh).
#include "dataplane/maintenance/rebalance.hh"

namespace cachet::dataplane::maintenance {

namespace {

// Donor order: a class holding nothing first (its pages serve no one), then the oldest next
// victim; ties go to the class with more pages, then the lower id.
bool older(const ClassView& a, const ClassView& b) {
  const bool a_empty = a.items == 0, b_empty = b.items == 0;
  if (a_empty != b_empty) return a_empty;
  if (!a_empty && a.age != b.age) return a.age > b.age;
  if (a.pages != b.pages) return a.pages > b.pages;
  return a.id < b.id;
}

// The best donor for `to`, or nullptr.
const ClassView* donor_for(std::span<const ClassView> classes, const ClassView& to) {
  const ClassView* best = nullptr;
  for (const ClassView& c : classes)
    if (c.id != to.id && can_give(c) && (!best || older(c, *best))) best = &c;
  return best;
}

}  // namespace

Move choose_move(std::span<const ClassView> classes, int64_t mode, int64_t threshold_pct) {
  if (mode != 1 && mode != 2) return {};
  const ClassView* to = nullptr;
  double to_ratio = 0;
  for (const ClassView& c : classes) {
    if (c.evictions == 0 || c.items == 0) continue;
    if (mode == 2) {  // every evicting class qualifies; the youngest first
      if (!to || c.age < to->age || (c.age == to->age && c.evictions > to->evictions)) to = &c;
      continue;
    }
    // Mode 1: the average next-victim age of the other classes that hold items.
    uint64_t sum = 0, n = 0;
    for (const ClassView& o : classes) {
      if (o.id == c.id || o.items == 0) continue;
      sum += o.age;
      ++n;
    }
    if (n == 0) continue;
    const double avg = static_cast<double>(sum) / static_cast<double>(n);
    if (!(c.age * 100.0 < avg * static_cast<double>(100 - threshold_pct))) continue;
    const double ratio = c.age / avg;
    if (!to || ratio < to_ratio || (ratio == to_ratio && c.evictions > to->evictions)) {
      to = &c;
      to_ratio = ratio;
    }
  }
  if (!to) return {};
  const ClassView* from = donor_for(classes, *to);
  if (!from) return {};
  // A donor younger than the receiver would only starve itself (mode 1's rule; mode 2 moves
  // on every eviction regardless).
  if (mode == 1 && from->items > 0 && from->age <= to->age) return {};
  return {from->id, to->id};
}

std::vector<ClassView> Periods::next(const std::vector<store::ClassSample>& samples) {
  std::vector<ClassView> out;
  out.reserve(samples.size());
  for (const store::ClassSample& s : samples) {
    if (s.id >= last_.size()) last_.resize(s.id + 1, 0);
    const uint64_t total = s.evicted + s.outofmemory;
    ClassView v;
    v.id = s.id;
    v.pages = s.pages;
    v.items = s.items;
    v.evictions = total >= last_[s.id] ? total - last_[s.id] : total;  // after `stats reset`
    v.age = s.victim_age;
    last_[s.id] = total;
    out.push_back(v);
  }
  return out;
}

}  // namespace cachet::dataplane::maintenance
