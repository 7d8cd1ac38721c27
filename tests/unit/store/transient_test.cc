// The transient wheel: each second gives back its own entries across the wrap of its buffer,
// refusals, block reuse; and the store's threshold for what is transient.
#include "store/transient.hh"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/clock.hh"
#include "tests/unit/store/helpers.hh"

namespace cachet::store {
namespace {

struct Wheel {
  explicit Wheel(uint32_t now) {
    std::string err;
    EXPECT_TRUE(Geometry::compute(8ull << 20, 1 << 20, 64, 1.07, &g, &err)) << err;
    arena = Arena::open("", g, 64, 1 << 20, 1.07, false, &err);
    EXPECT_TRUE(arena) << err;
    wheel = std::make_unique<TransientWheel>(*arena, g, true, now);
  }
  std::multiset<uint64_t> take(uint32_t second) {
    std::multiset<uint64_t> got;
    wheel->take(second, [&](uint64_t off) { got.insert(off); });
    return got;
  }
  Geometry g{};
  std::unique_ptr<Arena> arena;
  std::unique_ptr<TransientWheel> wheel;
};

TEST(TransientWheel, EachSecondGivesBackItsOwnEntriesAcrossTheWrap) {
  // Start a few seconds before the buffer's index wraps from kWheelSeconds - 1 to 0.
  const uint32_t start = 1000 * kWheelSeconds - 4;
  Wheel w(start);
  std::map<uint32_t, std::multiset<uint64_t>> want;
  for (uint32_t dt = 1; dt <= 60; ++dt) {
    for (uint64_t i = 0; i < dt % 7 + 1; ++i) {
      const uint64_t off = uint64_t{dt} * 1000 + i;
      ASSERT_TRUE(w.wheel->add(off, start + dt, static_cast<unsigned>(i)));
      want[start + dt].insert(off);
    }
  }
  // A second already reaped, or a full turn of the wheel away, is refused.
  EXPECT_FALSE(w.wheel->add(7, start, 0));
  EXPECT_FALSE(w.wheel->add(7, start + kWheelSeconds, 0));
  EXPECT_EQ(w.wheel->entries(), [&] {
    uint64_t n = 0;
    for (auto& [s, e] : want) n += e.size();
    return n;
  }());
  for (uint32_t s = start + 1; s <= start + 61; ++s) {
    EXPECT_EQ(w.take(s), want[s]) << "second " << s << " (slot " << s % kWheelSeconds << ")";
    EXPECT_EQ(w.wheel->reaped_until(), s);
    // Once taken, a second takes no more entries (a late writer leaves its item to the sweeps).
    EXPECT_FALSE(w.wheel->add(1, s, 0));
  }
  EXPECT_EQ(w.wheel->entries(), 0u);
  EXPECT_EQ(w.wheel->bytes(), 0u);
}

TEST(TransientWheel, BlocksAreReusedAndExhaustionIsARefusalNotALoss) {
  const uint32_t start = 5000;
  Wheel w(start);
  const uint64_t capacity = uint64_t{w.g.wheel_blocks} * WheelBlock::kEntries;
  uint64_t added = 0;
  while (w.wheel->add(added, start + 1 + static_cast<uint32_t>(added % 30), 0)) {
    ++added;
    ASSERT_LE(added, capacity);
  }
  EXPECT_GT(added, capacity / 2);
  uint64_t seen = 0;
  for (uint32_t s = start + 1; s <= start + 30; ++s) seen += w.take(s).size();
  EXPECT_EQ(seen, added);
  EXPECT_EQ(w.wheel->bytes(), 0u);
  EXPECT_TRUE(w.wheel->add(1, start + 31, 0));  // the blocks came back
}

TEST(TransientThreshold, DecidesWhatEntersTheWheelAndZeroTurnsItOff) {
  auto s = testing::open_store(8);
  Worker& w = s->worker(0);
  const uint32_t now = common::now_unix();
  s->set_transient_ttl(10);
  testing::put(*s, w, "a", "x", 0, now + 5);    // transient
  testing::put(*s, w, "b", "x", 0, now + 100);  // not
  testing::put(*s, w, "c", "x", 0, 0);          // never expires
  EXPECT_EQ(s->stats().transient_added, 1u);
  s->set_transient_ttl(0);
  testing::put(*s, w, "d", "x", 0, now + 5);
  EXPECT_EQ(s->stats().transient_added, 1u);
}

}  // namespace
}  // namespace cachet::store
