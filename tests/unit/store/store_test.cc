// The store's primitives: lock-free reads, the read-modify-write (keep, edit, write, remove,
// hidden items, the protocol ext and marks, allocation outside the lock), expiry, flush, and
// eviction and page moves under -m. memcached's command rules are tested in dataplane/.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "common/clock.hh"
#include "tests/unit/store/helpers.hh"

namespace cachet::store {
namespace {

using testing::del;
using testing::open_store;
using testing::put;
using testing::read;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s = open_store();
    ASSERT_TRUE(s);
    w = &s->worker(0);
  }
  std::string val(std::string_view k) {
    auto g = read(*s, *w, k);
    return g ? g->value : "<miss>";
  }
  // One update whose decision is `d`; returns what the decision saw (nullptr: nothing).
  template <class D>
  UpdateResult update(std::string_view k, D&& d, std::string_view value = {}, bool prepare = false,
                      uint64_t* cas = nullptr) {
    return s->update(*w, k, Store::hash(k), {value, prepare}, d, cas);
  }
  std::unique_ptr<Store> s;
  Worker* w = nullptr;
};

TEST_F(StoreTest, WriteReadRemoveRoundTrip) {
  uint64_t cas = 0;
  EXPECT_EQ(put(*s, *w, "a", "hello", 42, 0, &cas), UpdateResult::done);
  auto g = read(*s, *w, "a");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->value, "hello");
  EXPECT_EQ(g->flags, 42u);
  EXPECT_EQ(g->cas, cas);
  EXPECT_TRUE(del(*s, *w, "a"));
  EXPECT_FALSE(del(*s, *w, "a"));
  EXPECT_EQ(val("a"), "<miss>");
  EXPECT_EQ(s->stats().curr_items, 0u);
}

TEST_F(StoreTest, ValueIsFollowedByCrlfInTheView) {
  put(*s, *w, "k", "abc");
  common::ByteBuf out;
  s->get(*w, "k", Store::hash("k"), out, [&](const ItemView& v) {
    out.append(v.value.data(), v.value.size() + 2);
    return true;
  });
  EXPECT_EQ(out.view(), "abc\r\n");
}

TEST_F(StoreTest, AReadThatDeclinesCountsNothingAndLeavesNoOutput) {
  put(*s, *w, "k", "abc");
  common::ByteBuf out;
  out.append("keep");
  auto r = s->read(*w, "k", Store::hash("k"), {}, out, [&](const ItemView&) {
    out.append("dropped");
    return false;
  });
  EXPECT_EQ(r, ReadResult::declined);
  EXPECT_EQ(out.view(), "keep");
  EXPECT_EQ(s->class_stats()[0].get_hits, 0u);
  EXPECT_EQ(s->read(*w, "nope", Store::hash("nope"), {}, out, [](const ItemView&) { return true; }),
            ReadResult::miss);
}

TEST_F(StoreTest, DecisionSeesTheCurrentItemAndKeepChangesNothing) {
  uint64_t cas = 0;
  put(*s, *w, "k", "v1", 7, 0, &cas);
  const ItemView* seen = nullptr;
  std::string value;
  update("k", [&](const ItemView* cur, Change& ch) {
    seen = cur;
    value = std::string(cur->value);
    EXPECT_EQ(ch.op, Change::Op::keep);
    EXPECT_EQ(ch.flags, 7u);
    EXPECT_EQ(cur->cas, cas);
    ch.counts = kCountCasBadval;
  });
  EXPECT_NE(seen, nullptr);
  EXPECT_EQ(value, "v1");
  EXPECT_EQ(read(*s, *w, "k")->cas, cas);
  EXPECT_EQ(s->class_stats()[0].cas_badval, 1u);
  bool none = false;
  update("absent", [&](const ItemView* cur, Change&) { none = cur == nullptr; });
  EXPECT_TRUE(none);
}

TEST_F(StoreTest, EditChangesFieldsInPlaceAndComposeRewritesTheValue) {
  uint64_t before = 0, after = 0;
  put(*s, *w, "k", "1234", 0, 0, &before);
  auto write_x = [](char* dst, const ItemView* cur) { std::memset(dst, 'x', cur->value.size()); };
  update("k", [&](const ItemView*, Change& ch) {
    ch.op = Change::Op::edit;
    ch.exptime = common::now_unix() + 100;
    ch.marks = 5;
    ch.compose.emplace(write_x);
    ch.value_len = 4;
    ch.new_cas = true;
  }, {}, false, &after);
  EXPECT_NE(after, before);
  common::ByteBuf out;
  uint8_t marks = 0;
  s->get(*w, "k", Store::hash("k"), out, [&](const ItemView& v) {
    out.append(v.value);
    marks = v.marks;
    EXPECT_EQ(v.cas, after);
    return true;
  });
  EXPECT_EQ(out.view(), "xxxx");
  EXPECT_EQ(marks, 5);
}

TEST_F(StoreTest, AnEditThatResizesTheValueBecomesAWrite) {
  put(*s, *w, "k", "12");
  auto grow = [](char* dst, const ItemView* cur) {
    std::memcpy(dst, cur->value.data(), cur->value.size());
    std::memcpy(dst + cur->value.size(), "345", 3);
  };
  update("k", [&](const ItemView*, Change& ch) {
    ch.op = Change::Op::edit;
    ch.compose.emplace(grow);
    ch.value_len = 5;
  });
  EXPECT_EQ(val("k"), "12345");
}

TEST_F(StoreTest, HiddenItemsAreMissesToPlainReadsAndNotCurrItems) {
  put(*s, *w, "k", "secret");
  update("k", [](const ItemView*, Change& ch) {
    ch.op = Change::Op::edit;
    ch.hidden = true;
  });
  EXPECT_EQ(val("k"), "<miss>");
  EXPECT_EQ(s->stats().curr_items, 0u);
  EXPECT_EQ(s->stats().hidden_items, 1u);
  common::ByteBuf out;
  auto r = s->read(*w, "k", Store::hash("k"), {.hidden = true}, out, [&](const ItemView& v) {
    EXPECT_TRUE(v.hidden);
    out.append(v.value);
    return true;
  });
  EXPECT_EQ(r, ReadResult::hit);
  EXPECT_EQ(out.view(), "secret");
  // Replacing a hidden item by a visible one fixes both counts.
  put(*s, *w, "k", "open");
  EXPECT_EQ(s->stats().curr_items, 1u);
  EXPECT_EQ(s->stats().hidden_items, 0u);
  EXPECT_EQ(val("k"), "open");
}

TEST_F(StoreTest, ExtIsAddedInPlaceOrByACopyAndKeptAcrossEdits) {
  // A value whose chunk has room for the ext, and one that fills its chunk exactly.
  for (size_t len : {1u, 40u, 100u, 1000u}) {
    std::string k = "k" + std::to_string(len), v(len, 'v');
    put(*s, *w, k, v, 9);
    update(k, [](const ItemView*, Change& ch) {
      ch.op = Change::Op::edit;
      ch.has_ext = true;
      ch.ext.token = 0x1234567890ull;
      ch.ext.holdoff_until = 77;
    });
    ItemExt got{};
    uint32_t flags = 0;
    std::string value;
    update(k, [&](const ItemView* cur, Change&) {
      ASSERT_NE(cur->ext, nullptr);
      got = *cur->ext;
      flags = cur->flags;
      value = std::string(cur->value);
    });
    EXPECT_EQ(got.token, 0x1234567890ull) << len;
    EXPECT_EQ(got.holdoff_until, 77u);
    EXPECT_EQ(flags, 9u);
    EXPECT_EQ(value, v);
    // Dropping the ext in place.
    update(k, [](const ItemView*, Change& ch) {
      ch.op = Change::Op::edit;
      ch.has_ext = false;
    });
    bool has = true;
    update(k, [&](const ItemView* cur, Change&) { has = cur->ext != nullptr; });
    EXPECT_FALSE(has);
    EXPECT_EQ(val(k), v);
  }
  // mem_requested follows the ext on and off.
  uint64_t bytes = s->stats().bytes;
  put(*s, *w, "z", "v");
  uint64_t plain = s->stats().bytes - bytes;
  EXPECT_EQ(plain, item_total(1, 1));
}

TEST_F(StoreTest, WritesLargerThanTheLargestItemAreRefusedUnchanged) {
  put(*s, *w, "k", "old");
  const size_t max = s->value_max(1);
  std::string big(max + 1, 'x');
  EXPECT_EQ(put(*s, *w, "k", big), UpdateResult::too_large);
  EXPECT_EQ(val("k"), "old");
  big.pop_back();
  EXPECT_EQ(put(*s, *w, "k", big), UpdateResult::done);
  EXPECT_EQ(val("k"), big);
}

TEST_F(StoreTest, AWriteWithoutAPreparedChunkRunsTheDecisionAgain) {
  int calls = 0;
  update("k", [&](const ItemView*, Change& ch) {
    ++calls;
    ch.op = Change::Op::write;
    ch.value_len = 3;
  }, "abc", false);
  EXPECT_EQ(calls, 2);  // once to learn the size, once under the lock with the chunk
  EXPECT_EQ(val("k"), "abc");
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

TEST_F(StoreTest, ExpiredItemsAreMissesToReadsAndDecisions) {
  uint32_t now = common::now_unix();
  put(*s, *w, "gone", "x", 0, 1);
  put(*s, *w, "past", "x", 0, now - 10);
  put(*s, *w, "future", "x", 0, now + 1000);
  EXPECT_EQ(val("gone"), "<miss>");
  EXPECT_EQ(val("past"), "<miss>");
  EXPECT_EQ(val("future"), "x");
  EXPECT_EQ(s->stats().get_expired, 2u);
  EXPECT_EQ(s->stats().curr_items, 1u);
  put(*s, *w, "e", "x", 0, now - 1);
  bool seen = true;
  update("e", [&](const ItemView* cur, Change&) { seen = cur != nullptr; });
  EXPECT_FALSE(seen);
  EXPECT_EQ(s->stats().curr_items, 1u);  // the decision's look reclaimed it
}

TEST_F(StoreTest, FlushAllNowAndDelayed) {
  put(*s, *w, "a", "1");
  put(*s, *w, "b", "2");
  s->flush_all(0);
  EXPECT_EQ(val("a"), "<miss>");
  EXPECT_EQ(val("b"), "<miss>");
  EXPECT_EQ(s->stats().get_flushed, 2u);
  put(*s, *w, "c", "3");  // stored after the flush: alive
  EXPECT_EQ(val("c"), "3");
  s->flush_all(1000);  // far in the future: nothing goes yet
  EXPECT_EQ(val("c"), "3");
}

TEST_F(StoreTest, ValueMaxLeavesRoomForTheHeader) {
  size_t max = s->value_max(3);
  EXPECT_GT(max, 1000u * 1000u);
  EXPECT_LT(max, 1024u * 1024u);
}

TEST(StoreEviction, MemoryIsBoundedAndRecentlyReadItemsSurvive) {
  auto s = open_store(2);
  Worker& w = s->worker(0);
  std::string v(1000, 'v');
  // Keep reading a hot set while writing far more than fits.
  for (int i = 0; i < 20000; ++i) {
    ASSERT_EQ(testing::put(*s, w, "key" + std::to_string(i), v), UpdateResult::done);
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
  testing::put(*s, w, "a", "1");
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

// The page arithmetic of these two tests is that of the 1.07 class ladder (a finer one than the
// default): every size below gets a class of its own.
constexpr double kFineLadder = 1.07;

TEST(StorePages, AClassWithoutPagesTakesOneFromTheRichest) {
  auto s = testing::open_store(16, 1, "", kFineLadder);
  Worker& w = s->worker(0);
  // Small items (152-byte chunks) take every page...
  std::string small(100, 's');
  constexpr int kSmall = 120000;
  for (int i = 0; i < kSmall; ++i)
    ASSERT_EQ(testing::put(*s, w, "s" + std::to_string(i), small), UpdateResult::done);
  EXPECT_EQ(s->stats().slab_global_page_pool, 0u);
  // ...then every other size still stores, by moving pages over.
  for (size_t size : {1000u, 5000u, 20000u, 100000u, 500000u}) {
    std::string v(size, 'b');
    for (int i = 0; i < 3; ++i) {
      std::string k = "b" + std::to_string(size) + "_" + std::to_string(i);
      ASSERT_EQ(testing::put(*s, w, k, v), UpdateResult::done) << size;
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
  auto s = testing::open_store(8, 1, "", kFineLadder);
  Worker& w = s->worker(0);
  std::string a(100, 'a');
  // Class A takes 7 pages, then loses 95% of its items: it can spare pages.
  int na = 0;
  while (s->stats().slab_global_page_pool > 1)
    testing::put(*s, w, "a" + std::to_string(na++), a);
  for (int i = 0; i < na; ++i)
    if (i % 20 != 0) testing::del(*s, w, "a" + std::to_string(i));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // A's pages are no longer new
  // Class B fills its page and keeps writing: it should take pages A can spare (A keeps
  // 2.5 pages of free room), not evict B's own items.
  std::string b(3000, 'b');
  int nb = 1500;  // 5 pages of 323 chunks: the last free page, and 4 of A's
  for (int i = 0; i < nb; ++i)
    ASSERT_EQ(testing::put(*s, w, "b" + std::to_string(i), b), UpdateResult::done);
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
