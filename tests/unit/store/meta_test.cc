// The meta protocol's store operations: meta_get's view, changes and vivify; meta_store's cas,
// stale and binary-key rules; meta_delete's invalidation; meta_delta's cas, creation and
// exptime; and one winner per stale item or vivified key under concurrent readers.
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hh"
#include "tests/unit/store/helpers.hh"

namespace cachet::store {
namespace {

using testing::open_store;
using testing::read;

class MetaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s = open_store();
    ASSERT_TRUE(s);
    w = &s->worker(0);
  }
  StoreResult put(std::string_view k, std::string_view v, MetaStoreArgs a = {},
                  uint32_t flags = 0, uint32_t exp = 0) {
    return s->meta_store(*w, k, v, flags, exp, a, &last_cas);
  }
  // The view of k as a plain mg sees it (no changes); nullopt on a miss.
  std::optional<MetaView> view(std::string_view k, MetaGetArgs a = {}) {
    common::ByteBuf out;
    std::optional<MetaView> got;
    if (!s->meta_get(*w, k, a, out, [&](MetaView& m) { got = m; })) return std::nullopt;
    return got;
  }
  std::string val(std::string_view k) {
    auto g = read(*s, *w, k);
    return g ? g->value : "<miss>";
  }
  std::unique_ptr<Store> s;
  Worker* w = nullptr;
  uint64_t last_cas = 0;
};

TEST_F(MetaStoreTest, GetReportsTheItemAndItsAccessBeforeThisRequest) {
  EXPECT_FALSE(view("k"));
  ASSERT_EQ(put("k", "hello", {}, 7, 0), StoreResult::stored);
  auto m = view("k", {.bump = false});
  ASSERT_TRUE(m);
  EXPECT_EQ(m->item.flags, 7u);
  EXPECT_EQ(m->item.cas, last_cas);
  EXPECT_EQ(m->total, sizeof(uint64_t) * 5 + 1 + 5 + 2);  // 40-byte header, key, value, \r\n
  EXPECT_GE(m->clsid, 1);
  EXPECT_LE(common::now_unix() - m->atime, 1u);
  EXPECT_FALSE(m->fetched);
  EXPECT_FALSE(m->stale || m->win_sent || m->key_binary || m->created);
  EXPECT_FALSE(view("k")->fetched);  // bump = false left it unfetched: this one fetches
  EXPECT_TRUE(view("k")->fetched);
}

TEST_F(MetaStoreTest, ChangesAskedOnALockFreeReadAreRedoneUnderTheLock) {
  put("k", "v");
  common::ByteBuf out;
  int calls = 0;
  const uint32_t later = common::now_unix() + 100;
  ASSERT_TRUE(s->meta_get(*w, "k", {}, out, [&](MetaView& m) {
    ++calls;
    out.append("x");
    m.exptime = later;
  }));
  EXPECT_EQ(calls, 2);          // once lock-free, once locked
  EXPECT_EQ(out.view(), "x");   // the first call's bytes were dropped
  EXPECT_EQ(read(*s, *w, "k")->exptime, later);
  calls = 0;
  ASSERT_TRUE(s->meta_get(*w, "k", {.touch = true}, out, [&](MetaView& m) {
    ++calls;
    m.exptime = 0;
  }));
  EXPECT_EQ(calls, 1);  // touch locks at once
  EXPECT_EQ(read(*s, *w, "k")->exptime, 0u);
}

TEST_F(MetaStoreTest, VivifyLinksAnEmptyItemOnceAndTheWinSticks) {
  common::ByteBuf out;
  std::optional<MetaView> got;
  auto grab = [&](MetaView& m) {
    got = m;
    if (m.created) m.win = true;
  };
  ASSERT_TRUE(s->meta_get(*w, "v", {.vivify = true}, out, grab));
  EXPECT_TRUE(got->created);
  EXPECT_EQ(got->item.value, "");
  EXPECT_EQ(got->item.flags, 0u);
  EXPECT_EQ(got->item.exptime, 0u);
  ASSERT_TRUE(s->meta_get(*w, "v", {.vivify = true}, out, grab));
  EXPECT_FALSE(got->created);
  EXPECT_TRUE(got->win_sent);
  EXPECT_EQ(s->stats().total_items, 1u);
  // An expired item is replaced like a missing one.
  put("e", "old", {}, 0, 1);
  ASSERT_TRUE(s->meta_get(*w, "e", {.vivify = true}, out, grab));
  EXPECT_TRUE(got->created);
  EXPECT_EQ(val("e"), "");
}

TEST_F(MetaStoreTest, StoreModesAndCas) {
  EXPECT_EQ(put("k", "a", {.mode = Mode::cas, .cas_in = 1}), StoreResult::not_found);
  EXPECT_EQ(put("k", "a", {.mode = Mode::add, .cas_in = 12345}), StoreResult::stored);
  uint64_t cas = last_cas;
  EXPECT_EQ(put("k", "b", {.mode = Mode::add}), StoreResult::not_stored);
  EXPECT_EQ(put("k", "b", {.mode = Mode::cas, .cas_in = cas + 1}), StoreResult::exists);
  EXPECT_EQ(put("k", "b", {.mode = Mode::cas, .cas_in = 0}), StoreResult::exists);
  EXPECT_EQ(put("k", "b", {.mode = Mode::cas, .cas_in = cas}), StoreResult::stored);
  cas = last_cas;
  EXPECT_EQ(put("k", "+", {.mode = Mode::append, .cas_in = cas + 1}), StoreResult::exists);
  EXPECT_EQ(put("k", "+", {.mode = Mode::append, .cas_in = cas}), StoreResult::stored);
  EXPECT_EQ(put("k", "-", {.mode = Mode::prepend}), StoreResult::stored);
  EXPECT_EQ(val("k"), "-b+");
  EXPECT_EQ(put("m", "x", {.mode = Mode::append}), StoreResult::not_stored);
  EXPECT_EQ(put("m", "x", {.mode = Mode::replace}), StoreResult::not_stored);
}

TEST_F(MetaStoreTest, BinaryKeyMarkIsKeptBySetAndDroppedByAppend) {
  put("bin", "v", {.key_binary = true});
  EXPECT_TRUE(view("bin")->key_binary);
  put("bin", "w", {.mode = Mode::append, .key_binary = true});
  EXPECT_FALSE(view("bin")->key_binary);  // memcached's appended copy loses the mark
  put("bin", "v");
  EXPECT_FALSE(view("bin")->key_binary);
}

TEST_F(MetaStoreTest, InvalidatedCasStoresStaleKeepingExptimeAndWin) {
  const uint32_t exp = common::now_unix() + 500;
  put("k", "v1", {}, 0, exp);
  uint64_t cas = last_cas;
  // Without invalidate, a lower cas is a mismatch; with it, a higher one still is.
  EXPECT_EQ(put("k", "v2", {.mode = Mode::cas, .cas_in = cas - 1}), StoreResult::exists);
  EXPECT_EQ(put("k", "v2", {.mode = Mode::cas, .cas_in = cas + 1, .invalidate = true}),
            StoreResult::exists);
  common::ByteBuf out;
  s->meta_get(*w, "k", {}, out, [](MetaView& m) { m.win = true; });
  EXPECT_EQ(put("k", "v2", {.mode = Mode::cas, .cas_in = cas - 1, .invalidate = true}, 0, 0),
            StoreResult::stored);
  auto m = view("k");
  EXPECT_EQ(m->item.value, "v2");
  EXPECT_EQ(m->item.exptime, exp);
  EXPECT_TRUE(m->stale);
  EXPECT_TRUE(m->win_sent);
  // A plain set makes a fresh item.
  put("k", "v3");
  m = view("k");
  EXPECT_FALSE(m->stale || m->win_sent);
}

TEST_F(MetaStoreTest, DeleteInvalidateAndCas) {
  EXPECT_EQ(s->meta_delete(*w, "k", {}), MetaDeleteResult::not_found);
  put("k", "v");
  uint64_t cas = last_cas;
  EXPECT_EQ(s->meta_delete(*w, "k", {.has_cas = true, .cas_in = cas + 1}),
            MetaDeleteResult::exists);
  EXPECT_EQ(s->meta_delete(*w, "k", {.has_cas = true, .cas_in = 0}), MetaDeleteResult::exists);
  common::ByteBuf out;
  s->meta_get(*w, "k", {}, out, [](MetaView& m) { m.win = true; });
  const uint32_t exp = common::now_unix() + 30;
  EXPECT_EQ(s->meta_delete(*w, "k", {.invalidate = true, .touch = true, .exptime = exp}),
            MetaDeleteResult::invalidated);
  auto m = view("k");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->stale);
  EXPECT_FALSE(m->win_sent);  // the next client may win again
  EXPECT_NE(m->item.cas, cas);
  EXPECT_EQ(m->item.exptime, exp);
  EXPECT_EQ(s->meta_delete(*w, "k", {.has_cas = true, .cas_in = m->item.cas}),
            MetaDeleteResult::deleted);
  EXPECT_EQ(val("k"), "<miss>");
  put("x", "v", {}, 0, 1);  // expired
  EXPECT_EQ(s->meta_delete(*w, "x", {}), MetaDeleteResult::not_found);
  EXPECT_EQ(s->stats().curr_items, 0u);
}

TEST_F(MetaStoreTest, DeltaCasTouchAndVivify) {
  MetaDeltaOut o;
  EXPECT_EQ(s->meta_delta(*w, "n", {}, &o), MetaDeltaResult::not_found);
  const uint32_t exp = common::now_unix() + 100;
  EXPECT_EQ(s->meta_delta(*w, "n", {.vivify = true, .initial = 42, .vivify_exptime = exp}, &o),
            MetaDeltaResult::created);
  EXPECT_EQ(o.value, 42u);
  EXPECT_EQ(o.exptime, 0u);
  auto g = read(*s, *w, "n");
  EXPECT_EQ(g->value, "42");
  EXPECT_EQ(g->exptime, exp);
  EXPECT_EQ(g->cas, o.cas);
  // An existing item is not re-created.
  EXPECT_EQ(s->meta_delta(*w, "n", {.delta = 8, .vivify = true, .initial = 1}, &o),
            MetaDeltaResult::ok);
  EXPECT_EQ(o.value, 50u);
  EXPECT_EQ(o.exptime, exp);
  EXPECT_EQ(s->meta_delta(*w, "n", {.cas_in = o.cas + 1}, &o), MetaDeltaResult::exists);
  EXPECT_EQ(s->meta_delta(*w, "n", {.incr = false, .delta = 45, .cas_in = o.cas, .touch = true,
                                    .exptime = 0}, &o),
            MetaDeltaResult::ok);
  g = read(*s, *w, "n");
  EXPECT_EQ(g->value, "5 ");  // in place, padded as memcached pads
  EXPECT_EQ(g->exptime, 0u);
  EXPECT_EQ(g->cas, o.cas);
  // Growing past the old length makes a new item; touch applies to it.
  EXPECT_EQ(s->meta_delta(*w, "n", {.delta = 995, .touch = true, .exptime = exp}, &o),
            MetaDeltaResult::ok);
  g = read(*s, *w, "n");
  EXPECT_EQ(g->value, "1000");
  EXPECT_EQ(g->exptime, exp);
  EXPECT_EQ(g->cas, o.cas);
  EXPECT_EQ(s->meta_delta(*w, "n", {.incr = false, .delta = 5000}, &o), MetaDeltaResult::ok);
  EXPECT_EQ(o.value, 0u);
  // An empty value is non-numeric before the cas is looked at; text too.
  put("e", "");
  EXPECT_EQ(s->meta_delta(*w, "e", {.cas_in = 1}, &o), MetaDeltaResult::non_numeric);
  put("t", "abc");
  EXPECT_EQ(s->meta_delta(*w, "t", {.cas_in = 1}, &o), MetaDeltaResult::exists);
  EXPECT_EQ(s->meta_delta(*w, "t", {}, &o), MetaDeltaResult::non_numeric);
}

TEST_F(MetaStoreTest, SlabClassCount) { EXPECT_GT(s->slab_classes(), 100u); }

// One client wins each recache, however many read the stale item at once, and one creates
// each vivified key.
TEST(MetaStoreConcurrency, OneWinnerPerInvalidationAndPerVivify) {
  constexpr int kThreads = 4, kRounds = 300;
  auto s = open_store(8, kThreads + 1);
  ASSERT_EQ(s->store(s->worker(0), Mode::set, "hot", "v", 0, 0, 0), StoreResult::stored);
  std::atomic<int> wins{0}, created{0}, done{0}, round{-1};
  auto client = [&](int t) {
    Worker& w = s->worker(t);
    common::ByteBuf out;
    for (int r = 0; r < kRounds; ++r) {
      while (round.load() < r) std::this_thread::yield();
      // fn may run twice (lock-free, then locked): the last run is the one applied.
      bool won = false, made = false;
      s->meta_get(w, "hot", {}, out, [&](MetaView& m) {
        won = m.stale && !m.win_sent;
        m.win = won;
      });
      s->meta_get(w, "viv" + std::to_string(r), {.vivify = true}, out,
                  [&](MetaView& m) { made = m.created; });
      wins.fetch_add(won);
      created.fetch_add(made);
      done.fetch_add(1);
    }
  };
  std::vector<std::thread> th;
  for (int t = 1; t <= kThreads; ++t) th.emplace_back(client, t);
  for (int r = 0; r < kRounds; ++r) {
    while (done.load() < kThreads * r) std::this_thread::yield();
    EXPECT_EQ(s->meta_delete(s->worker(0), "hot", {.invalidate = true}),
              MetaDeleteResult::invalidated);
    round.store(r);
  }
  for (auto& t : th) t.join();
  EXPECT_EQ(wins.load(), kRounds);
  EXPECT_EQ(created.load(), kRounds);
}

// Mixed meta traffic from several threads on a few keys: every read sees a whole value and
// every counter stays a number, whatever sets, invalidations, deltas and wins interleave.
TEST(MetaStoreConcurrency, MixedTrafficKeepsValuesWhole) {
  constexpr int kThreads = 4, kOps = 20000;
  // 64 MB: every class used here gets its own page, so no page moves between classes (with
  // 8 MB, Slabs::release_page can give away a page a writer is about to free a chunk to).
  auto s = open_store(64, kThreads);
  std::atomic<uint64_t> bad{0};
  auto client = [&](int t) {
    Worker& w = s->worker(t);
    std::mt19937 rng(t);
    common::ByteBuf out;
    uint64_t seen_cas = 0;
    for (int i = 0; i < kOps; ++i) {
      const std::string key = "k" + std::to_string(rng() % 8);
      const std::string num = "n" + std::to_string(rng() % 4);
      const size_t len = rng() % 300;
      const std::string value(len, static_cast<char>('a' + len % 26));
      MetaDeltaOut o;
      switch (rng() % 6) {
        case 0:
          s->meta_store(w, key, value, 0, 0, {.key_binary = (rng() & 1) != 0}, &seen_cas);
          break;
        case 1:
          s->meta_store(w, key, value, 0, 0,
                        {.mode = Mode::cas, .cas_in = seen_cas, .invalidate = true}, &seen_cas);
          break;
        case 2:
          s->meta_delete(w, key, {.invalidate = (rng() & 1) != 0});
          break;
        case 3:
          s->meta_delta(w, num, {.incr = (rng() & 1) != 0, .delta = rng() % 1000,
                                 .vivify = true, .initial = rng() % 100},
                        &o);
          break;
        default: {
          const bool counter = rng() & 1;
          bool whole_read = true;  // fn may see a torn view that the store then retries or
          out.clear();             // drops: only the last call of a hit counts
          bool hit = s->meta_get(w, counter ? num : key, {.vivify = (rng() % 8) == 0}, out,
                      [&](MetaView& m) {
                        std::string_view v = m.item.value;
                        bool whole = counter ? (v.empty() || (v[0] >= '0' && v[0] <= '9'))
                                             : v.empty() || (v.find_first_not_of(v[0]) ==
                                                                 std::string_view::npos &&
                                                             v[0] == 'a' + v.size() % 26);
                        whole_read = whole;
                        seen_cas = m.item.cas;
                        m.win = m.stale && !m.win_sent;
                        if (rng() % 16 == 0) m.exptime = 0;
                      });
          if (hit && !whole_read) bad.fetch_add(1);
        }
      }
    }
  };
  std::vector<std::thread> th;
  for (int t = 0; t < kThreads; ++t) th.emplace_back(client, t);
  for (auto& t : th) t.join();
  EXPECT_EQ(bad.load(), 0u);
}

}  // namespace
}  // namespace cachet::store
