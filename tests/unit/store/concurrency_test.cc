// The index under concurrent readers and writers while it grows: a reader never sees a torn or
// foreign value, and every key written stays findable.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/store/helpers.hh"

namespace cachet::store {
namespace {

using testing::open_store;

// The value of key k at version n: self-describing, so a reader can check it whole.
std::string value_for(int k, int n) {
  std::string v = "key" + std::to_string(k) + ":ver" + std::to_string(n) + ":";
  v.append(static_cast<size_t>(k % 200), static_cast<char>('a' + n % 26));
  return v;
}

TEST(StoreConcurrency, ReadersNeverSeeTornValuesWhileWritersGrowTheIndex) {
  constexpr int kWriters = 2, kReaders = 2, kKeys = 40000, kRounds = 3;
  auto s = open_store(64, kWriters + kReaders);
  std::atomic<bool> done{false};
  std::atomic<int> written_upto[kWriters] = {};
  std::atomic<uint64_t> bad{0}, hits{0};

  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      Worker& w = s->worker(t);
      for (int round = 0; round < kRounds; ++round) {
        for (int k = t; k < kKeys; k += kWriters) {
          if (testing::put(*s, w, "key" + std::to_string(k), value_for(k, round), k) !=
              UpdateResult::done)
            bad.fetch_add(1);
          if (round == 0) written_upto[t].store(k);
        }
        // Deletes and re-adds churn the chains too.
        for (int k = t; k < kKeys; k += kWriters * 7) {
          const std::string key = "key" + std::to_string(k), v = value_for(k, round);
          testing::del(*s, w, key);
          s->update(w, key, Store::hash(key), {v, true}, [&](const ItemView* cur, Change& ch) {
            if (cur) return;  // as add: only where nothing is
            ch.op = Change::Op::write;
            ch.value_len = v.size();
            ch.flags = static_cast<uint32_t>(k);
          });
        }
      }
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      Worker& w = s->worker(kWriters + r);
      common::ByteBuf out;
      unsigned seed = 12345 + r;
      while (!done.load()) {
        seed = seed * 1103515245 + 12345;
        int k = static_cast<int>((seed >> 8) % kKeys);
        std::string key = "key" + std::to_string(k);
        out.clear();
        uint32_t flags = 0;
        if (s->get(w, key, Store::hash(key), out, [&](const ItemView& v) {
              out.append(v.value);
              flags = v.flags;
              return true;
            })) {
          hits.fetch_add(1);
          std::string got(out.view());
          bool ok = flags == static_cast<uint32_t>(k) && got.rfind(key + ":ver", 0) == 0;
          if (ok) {
            int n = std::stoi(got.substr(key.size() + 4));
            ok = got == value_for(k, n);
          }
          if (!ok) bad.fetch_add(1);
        }
      }
    });
  }
  for (int t = 0; t < kWriters; ++t) threads[t].join();
  done.store(true);
  for (int r = 0; r < kReaders; ++r) threads[kWriters + r].join();

  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(hits.load(), 1000u);
  StoreStats st = s->stats();
  EXPECT_GT(st.hash_power_level, 10u);  // the index grew while it was being read
  EXPECT_EQ(st.curr_items, static_cast<uint64_t>(kKeys));
  Worker& w = s->worker(0);
  for (int k = 0; k < kKeys; ++k) {
    auto g = testing::read(*s, w, "key" + std::to_string(k));
    ASSERT_TRUE(g) << k;
    EXPECT_EQ(g->value, value_for(k, kRounds - 1));
  }
}

}  // namespace
}  // namespace cachet::store

namespace cachet::store {
namespace {

TEST(StoreConcurrency, PageMovesUnderMixedSizesNeverCorruptAValue) {
  constexpr int kWriters = 2, kReaders = 2, kKeys = 3000, kOps = 30000;
  auto s = testing::open_store(4, kWriters + kReaders);  // 4 pages for many classes: moves
  std::atomic<bool> done{false};
  std::atomic<uint64_t> bad{0}, hits{0};
  auto size_of = [](int k) { return static_cast<size_t>(16 << (k % 12)); };  // 16 B .. 32 KB
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      Worker& w = s->worker(t);
      unsigned seed = 99 + t;
      for (int i = 0; i < kOps; ++i) {
        seed = seed * 1103515245 + 12345;
        int k = static_cast<int>((seed >> 8) % kKeys);
        std::string v(size_of(k), static_cast<char>('a' + k % 26));
        v.replace(0, std::to_string(k).size(), std::to_string(k));
        UpdateResult r = testing::put(*s, w, "k" + std::to_string(k), v, k);
        if (r != UpdateResult::done && r != UpdateResult::no_memory) bad.fetch_add(1);
      }
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      Worker& w = s->worker(kWriters + r);
      common::ByteBuf out;
      unsigned seed = 7 + r;
      while (!done.load()) {
        seed = seed * 1103515245 + 12345;
        int k = static_cast<int>((seed >> 8) % kKeys);
        out.clear();
        uint32_t flags = 0;
        const std::string key = "k" + std::to_string(k);
        if (!s->get(w, key, Store::hash(key), out, [&](const ItemView& v) {
              out.append(v.value);
              flags = v.flags;
              return true;
            }))
          continue;
        hits.fetch_add(1);
        std::string v(size_of(k), static_cast<char>('a' + k % 26));
        v.replace(0, std::to_string(k).size(), std::to_string(k));
        if (out.view() != v || flags != static_cast<uint32_t>(k)) bad.fetch_add(1);
      }
    });
  }
  for (int t = 0; t < kWriters; ++t) threads[t].join();
  done.store(true);
  for (int r = 0; r < kReaders; ++r) threads[kWriters + r].join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(hits.load(), 100u);
  StoreStats st = s->stats();
  EXPECT_GE(st.slabs_moved, 4u);  // 12 size classes share 4 pages: moves are forced
  EXPECT_LE(st.total_malloced, st.limit_maxbytes);
  uint64_t items = 0;
  for (const auto& c : s->class_stats()) items += c.number;
  EXPECT_EQ(items, st.curr_items);
}

}  // namespace
}  // namespace cachet::store
