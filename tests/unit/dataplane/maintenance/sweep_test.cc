// The sweep schedule: a class is swept when its expected dead items are worth it (from the last
// sweep's TTL histogram and the TTL writes since), not before; a flush makes every class due
// once it takes effect; the maximum gap bounds how long TTL items wait.
#include "dataplane/maintenance/sweep.hh"

#include <gtest/gtest.h>

namespace cachet::dataplane::maintenance {
namespace {

store::ClassSample sample(unsigned id, uint64_t items, uint64_t ttl_sets = 0) {
  store::ClassSample c{};
  c.id = id;
  c.pages = 4;
  c.items = items;
  c.used_chunks = items;
  c.ttl_sets = ttl_sets;
  return c;
}

constexpr uint64_t kT0 = 1'700'000'000'000;  // ms
constexpr uint32_t kS0 = kT0 / 1000;

TEST(SweepPlan, AClassNeverSweptIsDueAtOnceAndAnEmptyOneNever) {
  SweepPlan p;
  EXPECT_EQ(p.due({sample(2, 0), sample(3, 10)}, kS0, kT0), 3u);
}

TEST(SweepPlan, DueWhenTheHistogramSaysEnoughHasExpired) {
  SweepPlan p;
  store::SweepTally t;
  t.checked = 10000;
  t.ttl[store::SweepTally::bin(100)] = 10000;  // all live, 64-127 s left
  p.swept(5, t, 0, kT0, p.flushes());
  const std::vector<store::ClassSample> c = {sample(5, 10000)};
  EXPECT_EQ(p.due(c, kS0 + 30, kT0 + 30'000), 0u);  // none can have expired yet
  EXPECT_EQ(p.expected_dead(c[0], kT0 + 30'000), 0.0);
  // 0.5 s into the bin: ~78 expected dead, below 1% of the class's 10000 used chunks.
  EXPECT_EQ(p.due(c, kS0 + 64, kT0 + 64'500), 0u);
  EXPECT_GT(p.expected_dead(c[0], kT0 + 70'000), 100.0);
  EXPECT_EQ(p.due(c, kS0 + 70, kT0 + 70'000), 5u);
  // Once swept again it waits for more.
  p.swept(5, store::SweepTally{}, 0, kT0 + 70'000, p.flushes());
  EXPECT_EQ(p.due(c, kS0 + 72, kT0 + 72'000), 0u);
}

TEST(SweepPlan, WritesWithATtlSinceTheSweepCountToo) {
  SweepPlan p;
  store::SweepTally t;
  t.checked = 1000;
  t.ttl[store::SweepTally::bin(5)] = 1000;  // short TTLs: 4-7 s
  p.swept(4, t, 0, kT0, p.flushes());
  // 1000 items seen expire between 4 and 8 s; 50000 written since with the same TTLs.
  const store::ClassSample c = sample(4, 51000, 50000);
  EXPECT_GT(p.expected_dead(c, kT0 + 20'000), 40000.0);
  EXPECT_EQ(p.due({c}, kS0 + 20, kT0 + 20'000), 4u);
  // Not within a second of the last sweep, however much there is.
  EXPECT_EQ(p.due({c}, kS0, kT0 + 500), 0u);
}

TEST(SweepPlan, WithoutTtlsOnlyNewTtlWritesOrTheMaximumGapBringItBack) {
  SweepPlan p;
  store::SweepTally t;
  t.checked = t.no_ttl = 1000;
  p.swept(2, t, 0, kT0, p.flushes());
  EXPECT_EQ(p.due({sample(2, 1000)}, kS0 + 10000, kT0 + 10'000'000), 0u);
  // Items with TTLs written since: swept again within the maximum gap at the latest.
  EXPECT_EQ(p.due({sample(2, 1010, 10)}, kS0 + 60, kT0 + 60'000), 0u);
  EXPECT_EQ(p.due({sample(2, 1010, 10)}, kS0 + 3600, kT0 + SweepPlan::kMaxGapMs), 2u);
}

TEST(SweepPlan, AFlushMakesEveryClassDueWhenItTakesEffect) {
  SweepPlan p;
  store::SweepTally t;
  t.checked = t.no_ttl = 100;
  for (unsigned id : {1u, 2u, 3u}) p.swept(id, t, 0, kT0, p.flushes());
  const std::vector<store::ClassSample> c = {sample(1, 100), sample(2, 100), sample(3, 0)};
  EXPECT_EQ(p.due(c, kS0 + 5, kT0 + 5000), 0u);
  p.note_flush(kS0 + 10, 0);  // flush_all 10 (delayed)
  EXPECT_EQ(p.due(c, kS0 + 9, kT0 + 9000), 0u);
  unsigned first = p.due(c, kS0 + 10, kT0 + 10'000);
  EXPECT_TRUE(first == 1 || first == 2) << first;
  EXPECT_EQ(p.expected_dead(c[first - 1], kT0 + 10'000), 100.0);
  p.swept(first, t, 0, kT0 + 10'000, p.flushes());
  const unsigned second = p.due(c, kS0 + 10, kT0 + 10'000);
  EXPECT_EQ(second, first == 1 ? 2u : 1u);
  // A sweep that started before a flush took effect does not count as its sweep.
  const uint64_t before = p.flushes();
  p.note_flush(kS0 + 20, 0);
  EXPECT_EQ(p.due(c, kS0 + 20, kT0 + 20'000) != 0, true);
  p.swept(1, t, 0, kT0 + 19'000, before);
  p.swept(2, t, 0, kT0 + 20'000, p.flushes());
  EXPECT_EQ(p.due(c, kS0 + 21, kT0 + 21'000), 1u);
}

}  // namespace
}  // namespace cachet::dataplane::maintenance
