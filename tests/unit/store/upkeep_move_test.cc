// The page mover (Upkeep::begin_move .. move_step): live items are relocated into free chunks of
// their class or evicted when there are none; under concurrent readers and writers no value is
// ever torn, no item that had room is lost, and nothing deadlocks.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hh"
#include "store/upkeep.hh"
#include "tests/unit/store/helpers.hh"

namespace cachet::store {
namespace {

// A self-describing value of `size` bytes for key k at generation g.
std::string value_of(int k, int g, size_t size) {
  std::string v = "k" + std::to_string(k) + "g" + std::to_string(g) + ":";
  v.resize(size, static_cast<char>('a' + (k + g) % 26));
  return v;
}

unsigned class_of(const Store& s, const std::vector<ClassStats>& cls, uint64_t pages_at_least) {
  (void)s;
  for (const auto& c : cls)
    if (c.total_pages >= pages_at_least) return c.id;
  return 0;
}

const ClassStats* find_class(const std::vector<ClassStats>& cls, unsigned id) {
  for (const auto& c : cls)
    if (c.id == id) return &c;
  return nullptr;
}

// Drives a move to its end (no other thread here: it never waits).
MoveResult run_move(Upkeep& up, Worker& w, PageMove& m) {
  for (int i = 0; i < 100000; ++i) {
    MoveResult r = up.move_step(w, m, 64, common::now_unix());
    if (r == MoveResult::done || r == MoveResult::failed) return r;
  }
  return MoveResult::working;
}

TEST(PageMove, LiveItemsAreRelocatedIntoFreeChunksOfTheirClass) {
  auto s = testing::open_store(16);
  Worker& w = s->worker(0);
  constexpr int kItems = 20000;  // ~4 pages of 200-byte chunks
  for (int i = 0; i < kItems; ++i)
    ASSERT_EQ(testing::put(*s, w, "k" + std::to_string(i), value_of(i, 0, 150)),
              UpdateResult::done);
  // Half of them go: every page keeps live items, and the class has room for them elsewhere.
  for (int i = 0; i < kItems; i += 2) testing::del(*s, w, "k" + std::to_string(i));
  testing::put(*s, w, "big", std::string(5000, 'b'));  // another class to receive the page
  auto before = s->class_stats();
  const unsigned from = class_of(*s, before, 3);
  const unsigned to = s->class_stats().back().id;
  ASSERT_NE(from, 0u);
  ASSERT_NE(from, to);

  Upkeep up(*s);
  PageMove m;
  ASSERT_TRUE(up.begin_move(from, to, &m));
  EXPECT_EQ(s->stats().slab_reassign_running, 1u);
  EXPECT_EQ(run_move(up, s->upkeep_worker(0), m), MoveResult::done);
  EXPECT_GT(m.rescued, 1000u);
  EXPECT_EQ(m.evicted, 0u);

  auto after = s->class_stats();
  EXPECT_EQ(find_class(after, from)->total_pages, find_class(before, from)->total_pages - 1);
  EXPECT_EQ(find_class(after, to)->total_pages, find_class(before, to)->total_pages + 1);
  StoreStats st = s->stats();
  EXPECT_EQ(st.slab_reassign_rescues, m.rescued);
  EXPECT_EQ(st.slab_reassign_running, 0u);
  EXPECT_EQ(st.slabs_moved, 1u);
  EXPECT_EQ(st.curr_items, kItems / 2 + 1u);
  for (int i = 1; i < kItems; i += 2) {
    auto g = testing::read(*s, w, "k" + std::to_string(i));
    ASSERT_TRUE(g) << i;
    ASSERT_EQ(g->value, value_of(i, 0, 150));
  }
  // The receiving class uses its new page.
  for (int i = 0; i < 300; ++i)
    ASSERT_EQ(testing::put(*s, w, "b" + std::to_string(i), std::string(5000, 'c')),
              UpdateResult::done);
  EXPECT_EQ(s->stats().evictions, 0u);
  std::string report;
  EXPECT_TRUE(s->check(&report)) << report;
}

// Without a free chunk, the class's CLOCK hand makes room: the page's live items move and the
// class gives up the items the hand picks (counted as evictions), never a page of its own.
TEST(PageMove, WithoutRoomTheClockHandMakesRoomForThePagesItems) {
  auto s = testing::open_store(8);
  Worker& w = s->worker(0);
  int n = 0;  // fill until the class has used every page (and evicts)
  for (; s->stats().evictions == 0; ++n)
    ASSERT_EQ(testing::put(*s, w, "k" + std::to_string(n), value_of(n, 0, 150)),
              UpdateResult::done);
  const unsigned from = s->class_stats()[0].id;
  const auto before = s->stats();
  // A class with no page yet receives one.
  const unsigned to = s->slab_classes();
  Upkeep up(*s);
  PageMove m;
  ASSERT_TRUE(up.begin_move(from, to, &m));
  EXPECT_EQ(run_move(up, s->upkeep_worker(0), m), MoveResult::done);
  EXPECT_GT(m.rescued, 1000u);
  EXPECT_EQ(m.evicted, 0u);
  const auto st = s->stats();
  EXPECT_EQ(st.slab_reassign_evictions_nomem, 0u);
  EXPECT_EQ(st.evictions - before.evictions, m.rescued);  // one CLOCK victim per item moved
  EXPECT_EQ(st.curr_items, before.curr_items - m.rescued);
  // Whatever is left reads back whole.
  int found = 0;
  for (int i = 0; i < n; ++i) {
    auto g = testing::read(*s, w, "k" + std::to_string(i));
    if (!g) continue;
    ++found;
    ASSERT_EQ(g->value, value_of(i, 0, 150));
  }
  EXPECT_EQ(static_cast<uint64_t>(found), st.curr_items);
}

TEST(PageMove, ACancelledMoveGivesThePageBackUsable) {
  auto s = testing::open_store(8);
  Worker& w = s->worker(0);
  for (int i = 0; i < 3000; ++i) testing::put(*s, w, "k" + std::to_string(i), "v");
  for (int i = 0; i < 3000; i += 3) testing::del(*s, w, "k" + std::to_string(i));
  const unsigned from = s->class_stats()[0].id;
  const auto before = s->class_stats()[0];
  Upkeep up(*s);
  PageMove m;
  ASSERT_TRUE(up.begin_move(from, s->slab_classes(), &m));
  // While it drains, its free chunks are out of the class's reach...
  up.cancel_move(m);
  EXPECT_EQ(s->stats().slab_reassign_running, 0u);
  const auto after = s->class_stats()[0];
  EXPECT_EQ(after.total_pages, before.total_pages);
  EXPECT_EQ(after.free_chunks, before.free_chunks);
  // ...and after the cancel they are handed out again before any new page.
  const auto pool = s->stats().slab_global_page_pool;
  for (int i = 0; i < 1000; ++i) testing::put(*s, w, "n" + std::to_string(i), "v");
  EXPECT_EQ(s->stats().slab_global_page_pool, pool);
}

TEST(PageMove, ConcurrentReadersAndWritersSeeWholeValuesAndKeepTheirItems) {
  constexpr int kWriters = 2, kReaders = 2;
  constexpr int kStable = 6000, kSpare = 24000, kChurn = 3000, kMoves = 12;
  auto s = testing::open_store(32, kWriters + kReaders + 1);
  Worker& w0 = s->worker(kWriters + kReaders);
  // Stable keys are never written again: each must survive every move (their class always
  // has room: most of its chunks are free).
  for (int k = 0; k < kStable; ++k)
    ASSERT_EQ(testing::put(*s, w0, "s" + std::to_string(k), value_of(k, 0, 120)),
              UpdateResult::done);
  for (int k = 0; k < kSpare; ++k)
    ASSERT_EQ(testing::put(*s, w0, "x" + std::to_string(k), value_of(k, 0, 120)),
              UpdateResult::done);
  for (int k = 0; k < kSpare; ++k) testing::del(*s, w0, "x" + std::to_string(k));
  const unsigned cls = s->class_stats()[0].id;
  const unsigned other = s->slab_classes() - 1;

  std::atomic<bool> done{false};
  std::atomic<uint64_t> bad{0}, lost{0}, reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      Worker& w = s->worker(t);
      for (int g = 1; !done.load(); ++g) {
        for (int k = t; k < kChurn && !done.load(); k += kWriters) {
          const std::string key = "c" + std::to_string(k);
          if (g % 3 == 0) {
            testing::del(*s, w, key);
          } else if (testing::put(*s, w, key, value_of(k, g, 120)) != UpdateResult::done) {
            bad.fetch_add(1);
          }
        }
      }
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      Worker& w = s->worker(kWriters + r);
      unsigned seed = 17 + r;
      while (!done.load()) {
        seed = seed * 1103515245 + 12345;
        const int k = static_cast<int>((seed >> 8) % kStable);
        const bool stable = (seed >> 4) & 1;
        const std::string key = (stable ? "s" : "c") + std::to_string(stable ? k : k % kChurn);
        auto g = testing::read(*s, w, key);
        reads.fetch_add(1);
        if (!g) {
          if (stable) lost.fetch_add(1);
          continue;
        }
        // Whole and self-consistent: the key and generation it names, padded to size.
        const std::string& v = g->value;
        const size_t colon = v.find(':');
        const size_t gpos = v.find('g');
        if (v.size() != 120 || colon == std::string::npos || gpos == std::string::npos ||
            v.substr(1, gpos - 1) != key.substr(1)) {
          bad.fetch_add(1);
          continue;
        }
        const int gen = std::stoi(v.substr(gpos + 1, colon - gpos - 1));
        if (v != value_of(std::stoi(key.substr(1)), gen, 120)) bad.fetch_add(1);
      }
    });
  }
  // The mover takes a page of the class to another class and back, again and again.
  Upkeep up(*s);
  Worker& bg = s->upkeep_worker(0);
  int moved = 0;
  for (int i = 0; i < kMoves; ++i) {
    // Each move starts with readers and writers busy: wait for a few hundred more reads.
    const uint64_t seen = reads.load();
    while (reads.load() < seen + 300) std::this_thread::yield();
    PageMove m;
    const bool there = i % 2 == 0;
    if (!up.begin_move(there ? cls : other, there ? other : cls, &m)) continue;
    MoveResult r;
    do {
      r = up.move_step(bg, m, 128, common::now_unix());
      if (r == MoveResult::waiting) std::this_thread::yield();
    } while (r == MoveResult::working || r == MoveResult::waiting);
    if (r == MoveResult::done) ++moved;
  }
  done.store(true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(lost.load(), 0u);
  EXPECT_GT(reads.load(), 1000u);
  EXPECT_GE(moved, kMoves / 2);
  EXPECT_GT(s->stats().slab_reassign_rescues, 0u);
  for (int k = 0; k < kStable; ++k) {
    auto g = testing::read(*s, w0, "s" + std::to_string(k));
    ASSERT_TRUE(g) << k;
    ASSERT_EQ(g->value, value_of(k, 0, 120));
  }
  uint64_t items = 0;
  for (const auto& c : s->class_stats()) items += c.number;
  EXPECT_EQ(items, s->stats().curr_items);
}

}  // namespace
}  // namespace cachet::store
