// Store semantics: every storage mode, CAS, expiry, flush, incr/decr and eviction under -m.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/clock.hh"
#include "tests/unit/store/helpers.hh"

namespace cachet::store {
namespace {

using testing::open_store;
using testing::read;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s = open_store();
    ASSERT_TRUE(s);
    w = &s->worker(0);
  }
  StoreResult put(Mode m, std::string_view k, std::string_view v, uint32_t flags = 0,
                  uint32_t exp = 0, uint64_t cas = 0) {
    return s->store(*w, m, k, v, flags, exp, cas);
  }
  std::string val(std::string_view k) {
    auto g = read(*s, *w, k);
    return g ? g->value : "<miss>";
  }
  std::unique_ptr<Store> s;
  Worker* w = nullptr;
};

TEST_F(StoreTest, SetGetDeleteRoundTrip) {
  EXPECT_EQ(put(Mode::set, "a", "hello", 42), StoreResult::stored);
  auto g = read(*s, *w, "a");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->value, "hello");
  EXPECT_EQ(g->flags, 42u);
  EXPECT_TRUE(s->remove(*w, "a"));
  EXPECT_FALSE(s->remove(*w, "a"));
  EXPECT_EQ(val("a"), "<miss>");
}

TEST_F(StoreTest, ValueIsFollowedByCrlfInTheView) {
  put(Mode::set, "k", "abc");
  common::ByteBuf out;
  s->get(*w, "k", out, [&](const ItemView& v) { out.append(v.value.data(), v.value.size() + 2); });
  EXPECT_EQ(out.view(), "abc\r\n");
}

TEST_F(StoreTest, AddReplaceAppendPrepend) {
  EXPECT_EQ(put(Mode::replace, "k", "x"), StoreResult::not_stored);
  EXPECT_EQ(put(Mode::append, "k", "x"), StoreResult::not_stored);
  EXPECT_EQ(put(Mode::prepend, "k", "x"), StoreResult::not_stored);
  EXPECT_EQ(put(Mode::add, "k", "mid", 7), StoreResult::stored);
  EXPECT_EQ(put(Mode::add, "k", "other"), StoreResult::not_stored);
  EXPECT_EQ(put(Mode::append, "k", "-end", 99), StoreResult::stored);
  EXPECT_EQ(put(Mode::prepend, "k", "start-"), StoreResult::stored);
  auto g = read(*s, *w, "k");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->value, "start-mid-end");
  EXPECT_EQ(g->flags, 7u);  // append/prepend keep the old flags
  EXPECT_EQ(put(Mode::replace, "k", "new"), StoreResult::stored);
  EXPECT_EQ(val("k"), "new");
}

TEST_F(StoreTest, CasFlow) {
  EXPECT_EQ(put(Mode::cas, "c", "v", 0, 0, 1), StoreResult::not_found);
  uint64_t cas = 0;
  ASSERT_EQ(s->store(*w, Mode::set, "c", "v1", 0, 0, 0, &cas), StoreResult::stored);
  EXPECT_EQ(read(*s, *w, "c")->cas, cas);
  EXPECT_EQ(put(Mode::cas, "c", "v2", 0, 0, cas + 1000), StoreResult::exists);
  EXPECT_EQ(put(Mode::cas, "c", "v2", 0, 0, cas), StoreResult::stored);
  EXPECT_EQ(val("c"), "v2");
  EXPECT_EQ(put(Mode::cas, "c", "v3", 0, 0, cas), StoreResult::exists);
  EXPECT_NE(read(*s, *w, "c")->cas, cas);
}

TEST_F(StoreTest, AbsoluteExptimeFollowsMemcachedRules) {
  const uint32_t now = 1'700'000'000;
  EXPECT_EQ(Store::absolute_exptime(0, now), 0u);
  EXPECT_EQ(Store::absolute_exptime(-1, now), 1u);
  EXPECT_EQ(Store::absolute_exptime(100, now), now + 100);
  EXPECT_EQ(Store::absolute_exptime(kRelativeExptimeMax, now), now + kRelativeExptimeMax);
  EXPECT_EQ(Store::absolute_exptime(kRelativeExptimeMax + 1, now), 1u);  // absolute, in the past
  EXPECT_EQ(Store::absolute_exptime(now + 500, now), now + 500);        // absolute, future
}

TEST_F(StoreTest, ExpiredItemsAreMissesAndReclaimed) {
  uint32_t now = common::now_unix();
  put(Mode::set, "gone", "x", 0, Store::absolute_exptime(-1, now));
  put(Mode::set, "past", "x", 0, now - 10);
  put(Mode::set, "future", "x", 0, now + 1000);
  EXPECT_EQ(val("gone"), "<miss>");
  EXPECT_EQ(val("past"), "<miss>");
  EXPECT_EQ(val("future"), "x");
  EXPECT_EQ(s->stats().get_expired, 2u);
  EXPECT_EQ(s->stats().curr_items, 1u);
  // An expired key is free for add, and cannot be touched, replaced or deleted.
  put(Mode::set, "e", "x", 0, now - 1);
  EXPECT_FALSE(s->touch(*w, "e", 0));
  EXPECT_EQ(put(Mode::replace, "e", "y"), StoreResult::not_stored);
  put(Mode::set, "e", "x", 0, now - 1);
  EXPECT_FALSE(s->remove(*w, "e"));
  put(Mode::set, "e", "x", 0, now - 1);
  EXPECT_EQ(put(Mode::add, "e", "y"), StoreResult::stored);
}

TEST_F(StoreTest, TouchAndGetAndTouchChangeExptime) {
  uint32_t now = common::now_unix();
  put(Mode::set, "t", "v", 0, now + 100);
  EXPECT_TRUE(s->touch(*w, "t", now + 5000));
  EXPECT_EQ(read(*s, *w, "t")->exptime, now + 5000);
  common::ByteBuf out;
  EXPECT_TRUE(s->get_and_touch(*w, "t", 0, out, [&](const ItemView& v) { out.append(v.value); }));
  EXPECT_EQ(out.view(), "v");
  EXPECT_EQ(read(*s, *w, "t")->exptime, 0u);
  EXPECT_TRUE(s->get_and_touch(*w, "t", now - 1, out, [](const ItemView&) {}));
  EXPECT_EQ(val("t"), "<miss>");
  EXPECT_FALSE(s->touch(*w, "nope", 0));
}

TEST_F(StoreTest, FlushAllNowAndDelayed) {
  put(Mode::set, "a", "1");
  put(Mode::set, "b", "2");
  s->flush_all(*w, 0);
  EXPECT_EQ(val("a"), "<miss>");
  EXPECT_EQ(val("b"), "<miss>");
  EXPECT_EQ(s->stats().get_flushed, 2u);
  put(Mode::set, "c", "3");  // stored after the flush: alive
  EXPECT_EQ(val("c"), "3");
  s->flush_all(*w, 1000);  // far in the future: nothing goes yet
  EXPECT_EQ(val("c"), "3");
}

TEST_F(StoreTest, IncrDecrFollowMemcached) {
  uint64_t r = 0;
  EXPECT_EQ(s->delta(*w, "n", true, 1, &r), DeltaResult::not_found);
  put(Mode::set, "n", "10");
  EXPECT_EQ(s->delta(*w, "n", true, 5, &r), DeltaResult::ok);
  EXPECT_EQ(r, 15u);
  EXPECT_EQ(s->delta(*w, "n", false, 6, &r), DeltaResult::ok);
  EXPECT_EQ(r, 9u);
  EXPECT_EQ(val("n"), "9 ");  // shorter result written in place, padded with a space
  EXPECT_EQ(s->delta(*w, "n", false, 100, &r), DeltaResult::ok);
  EXPECT_EQ(r, 0u);  // decr stops at zero
  EXPECT_EQ(s->delta(*w, "n", true, 123456, &r), DeltaResult::ok);
  EXPECT_EQ(val("n"), "123456");  // grew: a new item
  put(Mode::set, "max", "18446744073709551615");
  EXPECT_EQ(s->delta(*w, "max", true, 2, &r), DeltaResult::ok);
  EXPECT_EQ(r, 1u);  // wraps at 2^64
  put(Mode::set, "text", "abc");
  EXPECT_EQ(s->delta(*w, "text", true, 1, &r), DeltaResult::non_numeric);
  put(Mode::set, "empty", "");
  EXPECT_EQ(s->delta(*w, "empty", true, 1, &r), DeltaResult::non_numeric);
  put(Mode::set, "neg", "-5");
  EXPECT_EQ(s->delta(*w, "neg", true, 1, &r), DeltaResult::non_numeric);
  put(Mode::set, "big", "18446744073709551616");
  EXPECT_EQ(s->delta(*w, "big", true, 1, &r), DeltaResult::non_numeric);
}

TEST_F(StoreTest, TooLargeAndValueMax) {
  size_t max = s->value_max(3);
  EXPECT_GT(max, 1000u * 1000u);
  EXPECT_LT(max, 1024u * 1024u);
  put(Mode::set, "big", "old");
  std::string v(max + 1, 'x');
  EXPECT_EQ(put(Mode::set, "big", v), StoreResult::too_large);
  EXPECT_EQ(val("big"), "<miss>");  // a failed set removes the stale value
  v.pop_back();
  EXPECT_EQ(put(Mode::set, "big", v), StoreResult::stored);
  EXPECT_EQ(val("big"), v);
}

TEST(StoreEviction, MemoryIsBoundedAndRecentlyReadItemsSurvive) {
  auto s = open_store(2);
  Worker& w = s->worker(0);
  std::string v(1000, 'v');
  // Keep reading a hot set while writing far more than fits.
  for (int i = 0; i < 20000; ++i) {
    ASSERT_EQ(s->store(w, Mode::set, "key" + std::to_string(i), v, 0, 0, 0), StoreResult::stored);
    if (i >= 100)
      for (int h = 0; h < 10; ++h) read(*s, w, "key" + std::to_string(h));
  }
  StoreStats st = s->stats();
  EXPECT_LE(st.total_malloced, st.limit_maxbytes);
  EXPECT_EQ(st.limit_maxbytes, 2u << 20);
  EXPECT_GT(st.evictions, 15000u);
  EXPECT_LT(st.curr_items, 2200u);
  for (int h = 0; h < 10; ++h) EXPECT_TRUE(read(*s, w, "key" + std::to_string(h))) << h;
  EXPECT_TRUE(read(*s, w, "key19999"));
  auto cls = s->class_stats();
  ASSERT_EQ(cls.size(), 1u);
  EXPECT_GT(cls[0].evicted, 15000u);
  EXPECT_EQ(cls[0].number, st.curr_items);
}

TEST(StoreStats, ResetClearsCountersNotItems) {
  auto s = open_store();
  Worker& w = s->worker(0);
  s->store(w, Mode::set, "a", "1", 0, 0, 0);
  read(*s, w, "a");
  EXPECT_EQ(s->class_stats()[0].get_hits, 1u);
  s->reset_stats();
  EXPECT_EQ(s->class_stats()[0].get_hits, 0u);
  EXPECT_EQ(s->stats().curr_items, 1u);
}

}  // namespace
}  // namespace cachet::store

namespace cachet::store {
namespace {

TEST(StorePages, AClassWithoutPagesTakesOneFromTheRichest) {
  auto s = testing::open_store(16);
  Worker& w = s->worker(0);
  // Small items (152-byte chunks) take every page...
  std::string small(100, 's');
  constexpr int kSmall = 120000;
  for (int i = 0; i < kSmall; ++i)
    ASSERT_EQ(s->store(w, Mode::set, "s" + std::to_string(i), small, 0, 0, 0), StoreResult::stored);
  EXPECT_EQ(s->stats().slab_global_page_pool, 0u);
  // ...then every other size still stores, by moving pages over.
  for (size_t size : {1000u, 5000u, 20000u, 100000u, 500000u}) {
    std::string v(size, 'b');
    for (int i = 0; i < 3; ++i) {
      std::string k = "b" + std::to_string(size) + "_" + std::to_string(i);
      ASSERT_EQ(s->store(w, Mode::set, k, v, 0, 0, 0), StoreResult::stored) << size;
      auto g = testing::read(*s, w, k);
      ASSERT_TRUE(g);
      EXPECT_EQ(g->value, v);
    }
  }
  StoreStats st = s->stats();
  EXPECT_LE(st.total_malloced, st.limit_maxbytes);
  // What remains of the small class is intact: it gave 7 of its 16 pages.
  int found = 0;
  for (int i = 0; i < kSmall; ++i) {
    auto g = testing::read(*s, w, "s" + std::to_string(i));
    if (g) {
      ++found;
      ASSERT_EQ(g->value, small);
    }
  }
  EXPECT_GT(found, 50000);
  EXPECT_EQ(st.slabs_moved, 5u);  // one page for each new class...
  uint64_t items = 0;
  for (const auto& c : s->class_stats()) items += c.number;
  EXPECT_EQ(items, st.curr_items);
  // ...where the 500 KB class (two chunks a page) evicts its own before taking more.
  EXPECT_EQ(static_cast<uint64_t>(found) + 3 + 3 + 3 + 3 + 2, st.curr_items);
}

}  // namespace
}  // namespace cachet::store

namespace cachet::store {
namespace {

TEST(StorePages, SparsePagesOfOtherClassesGoBeforeOwnEvictions) {
  auto s = testing::open_store(8);
  Worker& w = s->worker(0);
  std::string a(100, 'a');
  // Class A takes 7 pages, then loses 95% of its items: it can spare pages.
  int na = 0;
  while (s->stats().slab_global_page_pool > 1)
    s->store(w, Mode::set, "a" + std::to_string(na++), a, 0, 0, 0);
  for (int i = 0; i < na; ++i)
    if (i % 20 != 0) s->remove(w, "a" + std::to_string(i));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // A's pages are no longer new
  // Class B fills its page and keeps writing: it should take pages A can spare (A keeps
  // 2.5 pages of free room), not evict B's own items.
  std::string b(3000, 'b');
  int nb = 1500;  // 5 pages of 323 chunks: the last free page, and 4 of A's
  for (int i = 0; i < nb; ++i)
    ASSERT_EQ(s->store(w, Mode::set, "b" + std::to_string(i), b, 0, 0, 0), StoreResult::stored);
  for (int i = 0; i < nb; ++i) ASSERT_TRUE(testing::read(*s, w, "b" + std::to_string(i))) << i;
  auto cls = s->class_stats();
  uint64_t b_evicted = 0;
  for (const auto& c : cls)
    if (c.chunk_size >= 3000) b_evicted += c.evicted;
  EXPECT_EQ(b_evicted, 0u);
  EXPECT_EQ(s->stats().slabs_moved, 4u);
}

}  // namespace
}  // namespace cachet::store
