// Store::check: holds on a fresh store and after a long mixed workload (evictions, page moves,
// flush, hidden items with an ext, in-place edits), and finds the damage done to an arena file
// behind the store's back;
// and what an attach does with such damage: damaged tables are refused (or discarded when
// asked), a damaged item is dropped, never served, and a stale bucket lock stops nothing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <random>
#include <string>

#include "common/hash.hh"
#include "store/arena.hh"
#include "tests/unit/store/helpers.hh"

namespace cachet::store {
namespace {

using testing::open_store;

TEST(Check, FreshStoreIsConsistent) {
  auto s = open_store(4);
  std::string report;
  EXPECT_TRUE(s->check(&report)) << report;
}

TEST(Check, HoldsAfterMixedWorkloadWithEvictions) {
  auto s = open_store(4);
  Worker& w = s->worker(0);
  std::mt19937 rnd(42);
  auto edit = [&](const std::string& key, auto&& change) {  // an in-place edit of a live item
    s->update(w, key, Store::hash(key), {}, [&](const ItemView* cur, Change& ch) {
      if (cur) change(ch);
    });
  };
  for (int i = 0; i < 20000; ++i) {
    std::string key = std::to_string(rnd() % 3000);
    // Sizes from a few bytes to 200 KB: 4 MB fills up and classes trade pages.
    const size_t len = rnd() % 32 == 0 ? rnd() % 200000 : rnd() % 300;
    switch (rnd() % 10) {
      case 0: case 1: case 2: case 3:
        testing::put(*s, w, key, std::string(len, 'v'), 1);
        break;
      case 4: testing::del(*s, w, key); break;
      case 5: testing::put(*s, w, key, std::to_string(rnd() % 100)); break;
      case 6:  // touch
        edit(key, [&](Change& ch) {
          ch.op = Change::Op::edit;
          ch.exptime = rnd() % 2 ? 0 : 1;
        });
        break;
      case 7:  // a hidden placeholder with an ext (a lease-get miss, an mg N)
        s->update(w, key, Store::hash(key), {}, [&](const ItemView* cur, Change& ch) {
          if (cur) return;
          ch.op = Change::Op::write;
          ch.value_len = 0;
          ch.hidden = true;
          ch.has_ext = true;
          ch.ext.token = 12345;
          ch.marks = 2;
        });
        break;
      case 8:  // kept hidden after a delete, with a fresh cas
        edit(key, [&](Change& ch) {
          ch.op = Change::Op::edit;
          ch.hidden = true;
          ch.new_cas = true;
        });
        break;
      default: testing::read(*s, w, key); break;
    }
    if (i == 10000) s->flush_all(0);
  }
  EXPECT_GT(s->stats().evictions, 0u);
  std::string report;
  EXPECT_TRUE(s->check(&report)) << report;
}

// Damage done to a named arena's file between two runs is found by the next attach's check.
class CheckDamage : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/dev/shm/cachet-check-test-" + std::to_string(getpid());
    unlink(path_.c_str());
    auto s = open_store(4, 1, path_);
    Worker& w = s->worker(0);
    for (int i = 0; i < 100; ++i)
      ASSERT_EQ(testing::put(*s, w, "key" + std::to_string(i), "value"), UpdateResult::done);
    testing::del(*s, w, "key7");  // one chunk on a free list
    std::string err;
    ASSERT_TRUE(Geometry::compute(4ull << 20, 1 << 20, 64, 1.07, &g_, &err)) << err;
  }
  void TearDown() override { unlink(path_.c_str()); }

  // Maps the file and lets `damage` change it.
  template <class F>
  void damage(F&& f) {
    int fd = open(path_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    void* p = mmap(nullptr, g_.arena_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_NE(p, MAP_FAILED);
    f(static_cast<char*>(p));
    munmap(p, g_.arena_bytes);
    close(fd);
  }
  Options options(bool discard = false) const {
    Options o;
    o.memory_mb = 4;
    o.shm = path_;
    o.discard_incompatible = discard;
    return o;
  }
  Item* item(char* base, int i) {  // "key<i>", carved in order: the i-th chunk of class 1
    return reinterpret_cast<Item*>(base + g_.off_items + i * 64);
  }
  std::string check_after() {
    auto s = open_store(4, 1, path_);
    std::string report;
    EXPECT_FALSE(s->check(&report));
    return report;
  }
  // The class of the 40-byte header + 4-5 byte key + 7 byte value items.
  ClassState& small(char* base) { return reinterpret_cast<ClassState*>(base + g_.off_classes)[1]; }
  // Page 0, the first page of that class (key0 is its chunk 0).
  PageInfo& page0(char* base) { return *reinterpret_cast<PageInfo*>(base + g_.off_pages); }

  std::string path_;
  Geometry g_{};
};

TEST_F(CheckDamage, UndamagedArenaPasses) {
  auto s = open_store(4, 1, path_);
  std::string report;
  EXPECT_TRUE(s->check(&report)) << report;
}

TEST_F(CheckDamage, FindsAChangedValueByte) {
  damage([&](char* base) {
    Item* first = reinterpret_cast<Item*>(base + g_.off_items);  // carved first: "key0"
    first->value()[0] ^= 1;
  });
  EXPECT_NE(check_after().find("checksum mismatch"), std::string::npos);
}

TEST_F(CheckDamage, FindsAWrongFreeCount) {
  // A page's count (the class's is rebuilt from its pages' counts on every attach).
  damage([&](char* base) { ++page0(base).free_count; });
  EXPECT_NE(check_after().find("on its free list"), std::string::npos);
}

TEST_F(CheckDamage, FindsALinkedChunkOnTheFreeList) {
  damage([&](char* base) {  // key0's chunk (index 0, listed as 1) pushed on its page's list
    Item* first = reinterpret_cast<Item*>(base + g_.off_items);
    first->cas = page0(base).free_head;
    page0(base).free_head = 1;
    ++page0(base).free_count;
    ++small(base).free_count;
  });
  EXPECT_NE(check_after().find("both free and linked"), std::string::npos);
}

TEST_F(CheckDamage, DamagedTablesAreRefusedOrDiscarded) {
  damage([&](char* base) {
    reinterpret_cast<IndexHeader*>(base + g_.off_index)->shape.store(uint64_t{40} << 32);
  });
  std::string err;
  EXPECT_EQ(Store::open(options(), &err), nullptr);
  EXPECT_NE(err.find("damaged"), std::string::npos) << err;
  EXPECT_NE(err.find("--shm-discard"), std::string::npos) << err;
  auto s = Store::open(options(true), &err);
  ASSERT_TRUE(s) << err;
  EXPECT_FALSE(testing::read(*s, s->worker(0), "key1"));  // started empty
  EXPECT_EQ(testing::put(*s, s->worker(0), "k", "v"), UpdateResult::done);
  std::string report;
  EXPECT_TRUE(s->check(&report)) << report;
}

TEST_F(CheckDamage, DamagedValueIsDroppedNotServed) {
  damage([&](char* base) { item(base, 3)->value()[1] ^= 0x20; });  // "key3": "vAlue"
  auto s = open_store(4, 1, path_);
  Worker& w = s->worker(0);
  EXPECT_FALSE(testing::read(*s, w, "key3"));
  EXPECT_EQ(s->stats().crash_dropped, 1u);
  EXPECT_EQ(testing::read(*s, w, "key4")->value, "value");
}

TEST_F(CheckDamage, StaleBucketLockStopsNothing) {
  const uint64_t h = common::hash_key("key5");
  damage([&](char* base) {
    // The bucket of key5 locked, as a process that died holding it (or damage) leaves it.
    auto* buckets = reinterpret_cast<Bucket*>(base + g_.off_buckets);
    buckets[h & 1023].version.fetch_or(1);
  });
  auto s = open_store(4, 1, path_);
  Worker& w = s->worker(0);
  EXPECT_EQ(testing::read(*s, w, "key5")->value, "value");
  EXPECT_EQ(testing::put(*s, w, "key5", "again"), UpdateResult::done);
  EXPECT_EQ(testing::read(*s, w, "key5")->value, "again");
}

TEST_F(CheckDamage, FreeListPointingAtALiveItemIsCut) {
  damage([&](char* base) {  // key0's chunk the only free one of page 0, key0 still linked
    PageInfo& p = page0(base);
    p.free_head = 1;
    p.free_count = 1;
    p.flags |= PageInfo::kListed;
    p.free_next = p.free_prev = kNoPage;
    small(base).free_pages = 0;
    small(base).free_count = 1;
    item(base, 0)->cas = 0;
  });
  auto s = open_store(4, 1, path_);
  Worker& w = s->worker(0);
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(testing::put(*s, w, "new" + std::to_string(i), "x"), UpdateResult::done);
  EXPECT_EQ(testing::read(*s, w, "key0")->value, "value");
}

TEST_F(CheckDamage, SlotOutsideTheItemPagesIsNeverFollowed) {
  const uint64_t h = common::hash_key("key6");
  damage([&](char* base) {
    auto* b = reinterpret_cast<Bucket*>(base + g_.off_buckets) + (h & 1023);
    for (auto& slot : b->slot)
      if (slot.load()) slot.store(make_slot(slot_tag(slot.load()), uint64_t{1} << 46));
  });
  auto s = open_store(4, 1, path_);
  Worker& w = s->worker(0);
  EXPECT_FALSE(testing::read(*s, w, "key6"));
  EXPECT_FALSE(testing::del(*s, w, "key6"));
  EXPECT_EQ(testing::put(*s, w, "key6", "new"), UpdateResult::done);
  EXPECT_EQ(testing::read(*s, w, "key6")->value, "new");
}

}  // namespace
}  // namespace cachet::store
