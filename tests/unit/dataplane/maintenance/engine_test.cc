// The maintenance engine on a real private store: where its threads run, the transient reaper
// and sweeps bringing memory back without any request, the rebalancer moving pages toward a
// starving class (and not in mode 0), `slabs reassign` checks, a clean stop mid-move. Every
// wait is for a state, bounded by a generous timeout; no timing decides a result.
#include "dataplane/maintenance/engine.hh"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "common/clock.hh"
#include "store/upkeep.hh"

namespace cachet::dataplane::maintenance {
namespace {

using store::UpdateResult;

// Waits up to 60 s (a busy machine) for cond; true when it came.
bool wait_for(const std::function<bool()>& cond) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

UpdateResult put(store::Store& s, store::Worker& w, const std::string& key,
                 const std::string& value, uint32_t exptime = 0) {
  return s.update(w, key, store::Store::hash(key), {value, true},
                  [&](const store::ItemView*, store::Change& ch) {
                    ch.op = store::Change::Op::write;
                    ch.value_len = value.size();
                    ch.exptime = exptime;
                    ch.hidden = ch.has_ext = false;
                    ch.marks = 0;
                  });
}

bool hit(store::Store& s, store::Worker& w, const std::string& key) {
  common::ByteBuf out;
  return s.get(w, key, store::Store::hash(key), out, [](const store::ItemView&) { return true; });
}

struct Fixture : ::testing::Test {
  void open(uint64_t mb, int64_t automove = 1) {
    store::Options o;
    o.memory_mb = mb;
    std::string err;
    s = store::Store::open(o, &err);
    ASSERT_TRUE(s) << err;
    TunableValues v;
    v.slab_automove = automove;
    v.slab_automove_interval_ms = 100;
    tunables = std::make_unique<Tunables>(v);
    engine = std::make_unique<Engine>(*s, *tunables, EngineOptions{});
  }
  uint64_t used_chunks() {
    uint64_t n = 0;
    for (const auto& c : s->class_stats()) n += c.used_chunks;
    return n;
  }
  // The class of items with this value size and keys of about 5 bytes.
  const store::ClassStats* cls_of(size_t value_size) {
    classes = s->class_stats();
    const unsigned id = s->class_for(store::item_total(5, value_size));
    for (const auto& c : classes)
      if (c.id == id) return &c;
    return nullptr;
  }
  std::unique_ptr<store::Store> s;
  std::unique_ptr<Tunables> tunables;
  std::unique_ptr<Engine> engine;
  std::vector<store::ClassStats> classes;
};

TEST(EngineCpus, AwayFromPollCoresWherePossible) {
  EXPECT_EQ(engine_cpus({0, 1, 2, 3}, {0}, {0, 1, 2, 3}), (std::vector<unsigned>{1, 2, 3}));
  EXPECT_EQ(engine_cpus({}, {1}, {0, 1}), (std::vector<unsigned>{0}));
  // The process may run only on its poll core (taskset -c 0, lcore 0): elsewhere, never there.
  EXPECT_EQ(engine_cpus({0}, {0}, {0, 1}), (std::vector<unsigned>{1}));
  // Every CPU polls: nothing better than the allowed ones.
  EXPECT_EQ(engine_cpus({0, 1}, {0, 1}, {0, 1}), (std::vector<unsigned>{0, 1}));
  EXPECT_FALSE(process_cpus().empty());
}

TEST_F(Fixture, ItsThreadsRunOnTheChosenCpus) {
  open(8);
  engine->start();
  std::string allowed;
  ASSERT_TRUE(wait_for([&] {
    for (const auto& t : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(t.path() / "comm");
      std::string name;
      std::getline(comm, name);
      if (name != "cachet-maint") continue;
      std::ifstream status(t.path() / "status");
      for (std::string line; std::getline(status, line);)
        if (line.rfind("Cpus_allowed_list:", 0) == 0) allowed = line.substr(line.find_last_of("\t ") + 1);
      return true;
    }
    return false;
  }));
  std::string want;
  for (unsigned c : engine->cpus()) want += (want.empty() ? "" : ",") + std::to_string(c);
  // The kernel writes ranges ("0-3"); compare on single CPUs and the simple lists we make.
  if (want.find(',') == std::string::npos) EXPECT_EQ(allowed, want);
  engine->stop();
}

TEST_F(Fixture, ShortLivedItemsComeBackWithoutAnyRequest) {
  open(32);
  store::Worker& w = s->worker(0);
  const uint32_t now = common::now_unix();
  for (int i = 0; i < 20000; ++i) ASSERT_EQ(put(*s, w, "t" + std::to_string(i), "v", now + 1), UpdateResult::done);
  for (int i = 0; i < 20000; ++i) ASSERT_EQ(put(*s, w, "l" + std::to_string(i), "v"), UpdateResult::done);
  engine->start();
  ASSERT_TRUE(wait_for([&] { return s->stats().curr_items == 20000; })) << s->stats().curr_items;
  EXPECT_EQ(s->stats().transient_reaped, 20000u);
  { auto st = s->stats(); fprintf(stderr, "DBG reaped=%lu crawler=%lu added=%lu untracked=%lu tr_items=%lu tr_runs=%lu recl_items=%lu\n", st.transient_reaped, st.crawler_reclaimed, st.transient_added, st.transient_untracked, engine->figures(Task::transient).items, engine->figures(Task::transient).runs, engine->figures(Task::reclaim).items); }
  EXPECT_EQ(used_chunks(), 20000u);
  EXPECT_GE(engine->figures(Task::transient).items, 20000u);
  // flush_all: the sweeps take the rest, still with no request.
  s->flush_all(0);
  ASSERT_TRUE(wait_for([&] { return used_chunks() == 0; })) << used_chunks();
  EXPECT_EQ(s->stats().crawler_reclaimed, 20000u);
  EXPECT_GE(engine->figures(Task::reclaim).pages, 1u);
  engine->stop();
  std::string report;
  EXPECT_TRUE(s->check(&report)) << report;
}

TEST_F(Fixture, PagesMoveTowardAStarvingClassAndModeZeroStopsThem) {
  open(16, 0);
  store::Worker& w = s->worker(0);
  const std::string small(100, 's'), big(900, 'b');
  // Small items take every page...
  int n = 0;
  for (; s->stats().slab_global_page_pool > 0; ++n) put(*s, w, "s" + std::to_string(n), small);
  for (int i = 0; i < 5000; ++i) put(*s, w, "s" + std::to_string(n++), small);
  // ...then big ones arrive: their class gets one page inline and evicts within it.
  engine->start();
  // 5000 big items need 5 pages (about 1,090 chunks each): the class evicts until it has them.
  constexpr int kBig = 5000;
  auto churn_big = [&](int rounds) {
    for (int r = 0; r < rounds; ++r)
      for (int i = 0; i < kBig; ++i) put(*s, w, "b" + std::to_string(i), big);
  };
  churn_big(2);
  const store::ClassStats* b = cls_of(900);
  ASSERT_NE(b, nullptr);
  const uint64_t pages_before = b->total_pages;
  // Mode 0: the engine looks (its transient task keeps ticking) and moves nothing.
  const uint64_t ticks = engine->figures(Task::transient).runs;
  ASSERT_TRUE(wait_for([&] {
    churn_big(1);
    return engine->figures(Task::transient).runs >= ticks + 2;
  }));
  EXPECT_EQ(engine->figures(Task::rebalance).pages, 0u);
  // Mode 1: the big class's victims are far younger than the small class's: pages move to it.
  std::string err;
  ASSERT_TRUE(tunables->set("slab_automove", int64_t{1}, &err)) << err;
  ASSERT_TRUE(wait_for([&] {
    churn_big(1);
    const store::ClassStats* c = cls_of(900);
    return c && c->total_pages >= pages_before + 3;
  }));
  EXPECT_GE(engine->figures(Task::rebalance).pages, 3u);
  EXPECT_GE(s->stats().slabs_moved, 3u);
  engine->stop();
  EXPECT_EQ(s->stats().slab_reassign_running, 0u);
  // The arena is whole after the moves (per-page free lists, class lists, wheel).
  std::string report;
  EXPECT_TRUE(s->check(&report)) << report;
  // About four pages' worth of big items read back (the class's first page and three moved in;
  // a tenth of slack for the CLOCK's evictions during the churn).
  const uint64_t per_page = (uint64_t{1} << 20) / cls_of(900)->chunk_size;
  uint64_t big_hits = 0;
  for (int i = 0; i < kBig; ++i) big_hits += hit(*s, w, "b" + std::to_string(i));
  EXPECT_GT(big_hits, 4 * per_page * 9 / 10);
}

TEST_F(Fixture, ReassignIsCheckedThenCarriedOut) {
  open(8, 0);
  store::Worker& w = s->worker(0);
  for (int i = 0; i < 30000; ++i) put(*s, w, "k" + std::to_string(i), std::string(100, 'v'));
  unsigned src = 0;
  uint64_t pages = 0;
  for (const auto& c : s->class_stats())
    if (c.total_pages > pages) src = c.id, pages = c.total_pages;
  ASSERT_GE(pages, 2u);
  const auto n = static_cast<int32_t>(s->slab_classes());
  EXPECT_EQ(engine->request_move(3, 3), Reassign::same);
  EXPECT_EQ(engine->request_move(static_cast<int32_t>(src), n + 1), Reassign::badclass);
  EXPECT_EQ(engine->request_move(static_cast<int32_t>(src), 0), Reassign::badclass);
  EXPECT_EQ(engine->request_move(n, 1), Reassign::nospare);
  EXPECT_EQ(engine->request_move(0, 1), Reassign::nospare);  // memcached's empty page pool
  EXPECT_EQ(engine->request_move(-1, n), Reassign::ok);       // the class with most pages
  EXPECT_EQ(engine->request_move(-1, n), Reassign::busy);
  engine->start();
  ASSERT_TRUE(wait_for([&] { return s->stats().slabs_moved == 1; }));
  for (const auto& c : s->class_stats()) {
    if (c.id == src) EXPECT_EQ(c.total_pages, pages - 1);
    if (c.id == static_cast<unsigned>(n)) EXPECT_EQ(c.total_pages, 1u);
  }
  ASSERT_TRUE(wait_for([&] { return engine->request_move(-1, n) != Reassign::busy; }));
  engine->stop();
}

}  // namespace
}  // namespace cachet::dataplane::maintenance
