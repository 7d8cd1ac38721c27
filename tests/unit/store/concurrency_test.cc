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
          if (s->store(w, Mode::set, "key" + std::to_string(k), value_for(k, round), k, 0, 0) !=
              StoreResult::stored)
            bad.fetch_add(1);
          if (round == 0) written_upto[t].store(k);
        }
        // Deletes and re-adds churn the chains too.
        for (int k = t; k < kKeys; k += kWriters * 7) {
          s->remove(w, "key" + std::to_string(k));
          s->store(w, Mode::add, "key" + std::to_string(k), value_for(k, round), k, 0, 0);
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
        if (s->get(w, key, out, [&](const ItemView& v) {
              out.append(v.value);
              flags = v.flags;
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
