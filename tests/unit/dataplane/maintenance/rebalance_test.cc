// The rebalancer's choice on constructed class states: the paper's age rule and its threshold,
// ties, one class, an empty class, all classes equally old, mode 2 and mode 0; and periods
// made from the store's cumulative counters.
#include "dataplane/maintenance/rebalance.hh"

#include <gtest/gtest.h>

#include <vector>

namespace cachet::dataplane::maintenance {
namespace {

ClassView cls(unsigned id, uint32_t pages, uint64_t items, uint64_t evictions, uint32_t age) {
  return ClassView{id, pages, items, evictions, age};
}

Move choose(const std::vector<ClassView>& v, int64_t mode = 1, int64_t threshold = 20) {
  return choose_move(v, mode, threshold);
}

TEST(Rebalance, AStarvingClassGetsAPageFromTheOldest) {
  // Class 3 evicts items last used 10 s ago; the others' victims are 100 and 400 s old.
  const std::vector<ClassView> v = {cls(1, 10, 1000, 0, 100), cls(3, 4, 500, 50, 10),
                                    cls(5, 6, 300, 0, 400)};
  EXPECT_EQ(choose(v), (Move{5, 3}));
}

TEST(Rebalance, TheThresholdIsTheMargin) {
  // The others average 100 s: a victim of 85 s is 15% younger, of 79 s 21% younger.
  std::vector<ClassView> v = {cls(1, 5, 100, 0, 100), cls(2, 5, 100, 9, 85)};
  EXPECT_FALSE(choose(v));
  EXPECT_EQ(choose(v, 1, 10), (Move{1, 2}));
  v[1].age = 79;
  EXPECT_EQ(choose(v), (Move{1, 2}));
  v[1].age = 80;  // exactly 20% younger: not "more recently than" by the margin
  EXPECT_FALSE(choose(v));
}

TEST(Rebalance, OnlyAnEvictingClassCanStarve) {
  const std::vector<ClassView> v = {cls(1, 5, 100, 0, 500), cls(2, 5, 100, 0, 5)};
  EXPECT_FALSE(choose(v));
  EXPECT_FALSE(choose(v, 2));
}

TEST(Rebalance, OneClassHasNoOneToTakeFrom) {
  EXPECT_FALSE(choose({cls(1, 64, 10000, 500, 1)}));
  EXPECT_FALSE(choose({cls(1, 64, 10000, 500, 1)}, 2));
  EXPECT_FALSE(choose({}));
}

TEST(Rebalance, AllClassesEquallyOldMoveNothing) {
  const std::vector<ClassView> v = {cls(1, 5, 100, 7, 60), cls(2, 5, 100, 7, 60),
                                    cls(3, 5, 100, 7, 60)};
  EXPECT_FALSE(choose(v));
}

TEST(Rebalance, AnEmptyClassGivesFirstAndIsNotInTheAverage) {
  // Class 4 holds pages but no items: the best donor, even with one page. It has no age, so
  // it does not pull the others' average.
  const std::vector<ClassView> v = {cls(1, 6, 900, 30, 10), cls(2, 3, 100, 0, 100),
                                    cls(4, 1, 0, 0, 0)};
  EXPECT_EQ(choose(v), (Move{4, 1}));
  // A class holding items keeps its last page.
  EXPECT_FALSE(choose({cls(1, 6, 900, 30, 10), cls(2, 1, 100, 0, 1000)}));
}

TEST(Rebalance, TiesGoToTheMoreEvictingReceiverAndTheBiggerDonor) {
  // Two receivers equally starving: the one evicting more. Two donors equally old: the one
  // with more pages; then the lower id.
  const std::vector<ClassView> v = {cls(1, 4, 100, 5, 10), cls(2, 4, 100, 9, 10),
                                    cls(3, 5, 100, 0, 500), cls(4, 8, 100, 0, 500)};
  EXPECT_EQ(choose(v), (Move{4, 2}));
  const std::vector<ClassView> w = {cls(2, 4, 100, 9, 10), cls(3, 5, 100, 0, 500),
                                    cls(4, 5, 100, 0, 500)};
  EXPECT_EQ(choose(w), (Move{3, 2}));
}

TEST(Rebalance, NeverFromAYoungerClass) {
  // Class 2 starves against the average (dragged up by class 3), but the only class with a
  // page to spare (1) has younger victims still: no move.
  const std::vector<ClassView> v = {cls(1, 9, 100, 0, 5), cls(2, 4, 100, 3, 20),
                                    cls(3, 1, 100, 0, 900)};
  EXPECT_FALSE(choose(v));
}

TEST(Rebalance, ModeTwoMovesOnEveryEvictionAndModeZeroNever) {
  const std::vector<ClassView> v = {cls(1, 5, 100, 0, 100), cls(2, 5, 100, 1, 95)};
  EXPECT_FALSE(choose(v));             // 5% younger: not starving in mode 1
  EXPECT_EQ(choose(v, 2), (Move{1, 2}));  // any eviction in mode 2
  EXPECT_FALSE(choose(v, 0));
  EXPECT_FALSE(choose(v, 3));
}

TEST(Rebalance, PeriodsCountEvictionsSinceTheLastLook) {
  Periods p;
  store::ClassSample a{};
  a.id = 3;
  a.pages = 2;
  a.items = 10;
  a.evicted = 5;
  a.outofmemory = 1;
  a.victim_age = 42;
  auto v = p.next({a});
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].evictions, 6u);
  EXPECT_EQ(v[0].age, 42u);
  EXPECT_EQ(p.next({a})[0].evictions, 0u);
  a.evicted = 9;
  EXPECT_EQ(p.next({a})[0].evictions, 4u);
  a.evicted = 2;  // counters reset (`stats reset`): counted from zero
  a.outofmemory = 0;
  EXPECT_EQ(p.next({a})[0].evictions, 2u);
}

}  // namespace
}  // namespace cachet::dataplane::maintenance
