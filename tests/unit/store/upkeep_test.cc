// Upkeep's background steps other than page moves: the transient reaper frees short-lived items
// once their second has passed; the repair scan after a crash frees the chunks a dead process
// had taken for writes it never linked, keeps what it linked, and an attach undoes the page move
// it left half done.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/clock.hh"
#include "store/upkeep.hh"
#include "tests/unit/store/helpers.hh"

namespace cachet::store {
namespace {

TEST(TransientReaper, ShortLivedItemsAreFreedOnceTheirSecondHasPassed) {
  auto s = testing::open_store(8);
  Worker& w = s->worker(0);
  Upkeep up(*s);
  const uint32_t now = common::now_unix();
  for (int i = 0; i < 2000; ++i)
    ASSERT_EQ(testing::put(*s, w, "t" + std::to_string(i), "short", 0, now + 2),
              UpdateResult::done);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(testing::put(*s, w, "l" + std::to_string(i), "long", 0, now + 3600),
              UpdateResult::done);
  // A transient key overwritten by a long-lived value leaves a stale entry that frees nothing.
  ASSERT_EQ(testing::put(*s, w, "t0", "kept", 0, now + 3600), UpdateResult::done);
  StoreStats st = s->stats();
  EXPECT_EQ(st.transient_added, 2000u);
  EXPECT_EQ(st.transient_items, 2000u);
  EXPECT_EQ(st.curr_items, 3000u);

  Worker& bg = s->upkeep_worker(0);
  ReapTally early = up.reap_transient(bg, now + 2, 100);  // second now + 2 has not passed
  EXPECT_EQ(early.reaped, 0u);
  ReapTally r = up.reap_transient(bg, now + 3, 100);
  EXPECT_EQ(r.entries, 2000u);
  EXPECT_EQ(r.reaped, 1999u);
  st = s->stats();
  EXPECT_EQ(st.curr_items, 1001u);
  EXPECT_EQ(st.transient_reaped, 1999u);
  EXPECT_EQ(st.reclaimed, 1999u);
  EXPECT_EQ(st.transient_items, 0u);
  EXPECT_EQ(testing::read(*s, w, "t0")->value, "kept");
  EXPECT_EQ(up.transient_backlog(now + 3), 0u);
}


uint64_t used_chunks(const Store& s) {
  uint64_t used = 0;
  for (const auto& c : s.class_stats()) used += c.used_chunks;
  return used;
}

SweepTally repair_all(Store& s) {
  Upkeep up(s);
  SweepTally t;
  const uint32_t now = common::now_unix();
  for (uint32_t p = 0; p < up.pages_given(); ++p) up.repair_page(s.upkeep_worker(0), p, now, t);
  up.repair_done();
  return t;
}

TEST(Repair, ChunksADeadProcessTookButNeverLinkedAreFreed) {
  constexpr int kOrphans = 4, kItems = 5000;
  const std::string path = "/dev/shm/cachet-test-repair-" + std::to_string(getpid());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The crashing process: links items, then dies while kOrphans writes have their chunks
    // allocated and their bucket locks held (inside the decision), and one page is draining.
    auto s = testing::open_store(8, kOrphans + 1, path);
    if (!s) _exit(2);
    for (int i = 0; i < kItems; ++i)
      testing::put(*s, s->worker(kOrphans), "k" + std::to_string(i), std::string(100, 'v'), 0,
                   i % 2 ? common::now_unix() + 20 : 0);
    Upkeep up(*s);
    PageMove m;
    if (!up.begin_move(s->class_stats()[0].id, s->slab_classes(), &m)) _exit(3);
    std::atomic<int> inside{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < kOrphans; ++t) {
      writers.emplace_back([&, t] {
        const std::string key = "new" + std::to_string(t), v(100, 'n');
        s->update(s->worker(t), key, Store::hash(key), {v, true},
                  [&](const ItemView*, Change&) {
                    inside.fetch_add(1);
                    while (inside.load() < kOrphans + 1) std::this_thread::yield();
                  });
      });
    }
    while (inside.load() < kOrphans) std::this_thread::yield();
    _exit(0);  // no destructor runs: the arena stays marked attached
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  auto s = testing::open_store(8, 1, path);
  ASSERT_TRUE(s);
  Upkeep up(*s);
  EXPECT_TRUE(up.repair_pending());
  EXPECT_EQ(s->stats().slab_reassign_running, 0u);  // the draining page went back
  EXPECT_EQ(s->stats().curr_items, static_cast<uint64_t>(kItems));
  EXPECT_EQ(used_chunks(*s), static_cast<uint64_t>(kItems + kOrphans));
  const SweepTally t = repair_all(*s);
  EXPECT_FALSE(up.repair_pending());
  EXPECT_EQ(s->stats().crash_orphans_freed, static_cast<uint64_t>(kOrphans));
  EXPECT_EQ(used_chunks(*s), static_cast<uint64_t>(kItems));
  EXPECT_EQ(t.checked, static_cast<uint64_t>(kItems));
  // The short-TTL items went back into the (reset) transient wheel.
  EXPECT_EQ(s->stats().transient_items, static_cast<uint64_t>(kItems / 2));
  Worker& w = s->worker(0);
  for (int i = 0; i < kItems; ++i) ASSERT_TRUE(testing::read(*s, w, "k" + std::to_string(i)));
  // The locks the dead writers held were cleared; the keys they were writing can be written.
  for (int t = 0; t < kOrphans; ++t) {
    EXPECT_FALSE(testing::read(*s, w, "new" + std::to_string(t)));
    EXPECT_EQ(testing::put(*s, w, "new" + std::to_string(t), "ok"), UpdateResult::done);
  }
  // A second scan finds nothing more: what this process takes carries its epoch.
  repair_all(*s);
  EXPECT_EQ(s->stats().crash_orphans_freed, static_cast<uint64_t>(kOrphans));
  // And the arena is whole again: every chunk free or linked, the lists and counts agree.
  std::string report;
  EXPECT_TRUE(s->check(&report)) << report;
  s.reset();
  unlink(path.c_str());
}

TEST(Repair, ACleanDetachLeavesNothingToRepair) {
  const std::string path = "/dev/shm/cachet-test-repair-clean-" + std::to_string(getpid());
  {
    auto s = testing::open_store(4, 1, path);
    ASSERT_TRUE(s);
    testing::put(*s, s->worker(0), "a", "b");
  }
  auto s = testing::open_store(4, 1, path);
  ASSERT_TRUE(s);
  EXPECT_FALSE(Upkeep(*s).repair_pending());
  s.reset();
  unlink(path.c_str());
}

}  // namespace
}  // namespace cachet::store
