// memcached's item rules on the store's read-modify-write (dataplane/item_rules.hh): every
// storage mode, cas, expiry, touch, flush, incr/decr, meta's extras (stale cas, invalidation,
// binary keys, vivify), and the paper's two additions: deleted values kept hidden for stale
// reads, and the delete hold-off. Concurrency: one winner per refill.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hh"
#include "dataplane/executor.hh"
#include "dataplane/item_rules.hh"
#include "dataplane/marks.hh"
#include "dataplane/protocol/text_parser.hh"
#include "store/store.hh"

namespace cachet::dataplane {
namespace {

using store::Store;

std::unique_ptr<Store> open_store(uint64_t mb, unsigned workers) {
  store::Options o;
  o.memory_mb = mb;
  o.workers = workers;
  std::string err;
  auto s = Store::open(o, &err);
  EXPECT_TRUE(s) << err;
  return s;
}

// What a look at a key found (hidden items included when asked).
struct Seen {
  std::string value;
  uint32_t flags = 0, exptime = 0;
  uint64_t cas = 0;
  uint8_t marks = 0;
  bool hidden = false;
  std::optional<store::ItemExt> ext;
};

class RulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s = open_store(8, 1);
    ASSERT_TRUE(s);
    board = std::make_unique<StatsBoard>(1);
    tunables = std::make_unique<Tunables>(TunableValues{});
    rules = std::make_unique<ItemRules>(*s, s->worker(0), board->worker(0), *tunables);
  }
  StoreResult put(std::string_view k, std::string_view v, StoreArgs a = {}, uint32_t flags = 0,
                  uint32_t exp = 0) {
    return rules->store_item(k, Store::hash(k), v, flags, exp, a, &last_cas);
  }
  DeleteResult del(std::string_view k, DeleteArgs a = {}) {
    return rules->delete_item(k, Store::hash(k), a);
  }
  DeltaResult delta(std::string_view k, DeltaArgs a, DeltaOut* o) {
    return rules->delta_item(k, Store::hash(k), a, o);
  }
  bool touch(std::string_view k, uint32_t exp) {
    return rules->touch_item(k, Store::hash(k), exp, nullptr);
  }
  std::optional<Seen> look(std::string_view k, bool hidden = false) {
    common::ByteBuf out;
    Seen got;
    auto r = s->read(s->worker(0), k, Store::hash(k), {.bump = false, .count = false, .hidden = hidden},
                     out, [&](const store::ItemView& v) {
                       got = Seen{std::string(v.value), v.flags, v.exptime, v.cas, v.marks,
                                  v.hidden, std::nullopt};
                       if (v.ext) got.ext = *v.ext;
                       return true;
                     });
    if (r != store::ReadResult::hit) return std::nullopt;
    return got;
  }
  std::string val(std::string_view k) {
    auto g = look(k);
    return g ? g->value : "<miss>";
  }
  std::unique_ptr<Store> s;
  std::unique_ptr<StatsBoard> board;
  std::unique_ptr<Tunables> tunables;
  std::unique_ptr<ItemRules> rules;
  uint64_t last_cas = 0;
};

TEST_F(RulesTest, AddReplaceAppendPrepend) {
  EXPECT_EQ(put("k", "x", {.mode = Mode::replace}), StoreResult::not_stored);
  EXPECT_EQ(put("k", "x", {.mode = Mode::append}), StoreResult::not_stored);
  EXPECT_EQ(put("k", "x", {.mode = Mode::prepend}), StoreResult::not_stored);
  EXPECT_EQ(put("k", "mid", {.mode = Mode::add}, 7), StoreResult::stored);
  EXPECT_EQ(put("k", "other", {.mode = Mode::add}), StoreResult::not_stored);
  EXPECT_EQ(put("k", "-end", {.mode = Mode::append}, 99), StoreResult::stored);
  EXPECT_EQ(put("k", "start-", {.mode = Mode::prepend}), StoreResult::stored);
  auto g = look("k");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->value, "start-mid-end");
  EXPECT_EQ(g->flags, 7u);  // append/prepend keep the old flags
  EXPECT_EQ(put("k", "new", {.mode = Mode::replace}), StoreResult::stored);
  EXPECT_EQ(val("k"), "new");
}

TEST_F(RulesTest, CasFlowAndStoreModes) {
  EXPECT_EQ(put("k", "a", {.mode = Mode::cas, .cas_in = 1}), StoreResult::not_found);
  EXPECT_EQ(put("k", "a", {.mode = Mode::add, .cas_in = 12345}), StoreResult::stored);
  uint64_t cas = last_cas;
  EXPECT_EQ(look("k")->cas, cas);
  EXPECT_EQ(put("k", "b", {.mode = Mode::cas, .cas_in = cas + 1}), StoreResult::exists);
  EXPECT_EQ(put("k", "b", {.mode = Mode::cas, .cas_in = 0}), StoreResult::exists);
  EXPECT_EQ(put("k", "b", {.mode = Mode::cas, .cas_in = cas}), StoreResult::stored);
  cas = last_cas;
  EXPECT_EQ(put("k", "+", {.mode = Mode::append, .cas_in = cas + 1}), StoreResult::exists);
  EXPECT_EQ(put("k", "+", {.mode = Mode::append, .cas_in = cas}), StoreResult::stored);
  EXPECT_EQ(put("k", "-", {.mode = Mode::prepend}), StoreResult::stored);
  EXPECT_EQ(val("k"), "-b+");
}

TEST_F(RulesTest, ExpiredItemsAreAbsentToEveryRule) {
  const uint32_t now = common::now_unix();
  put("e", "x", {}, 0, now - 1);
  EXPECT_FALSE(touch("e", 0));
  EXPECT_EQ(put("e", "y", {.mode = Mode::replace}), StoreResult::not_stored);
  put("e", "x", {}, 0, now - 1);
  EXPECT_EQ(del("e"), DeleteResult::not_found);
  put("e", "x", {}, 0, now - 1);
  EXPECT_EQ(put("e", "y", {.mode = Mode::add}), StoreResult::stored);
  EXPECT_EQ(val("e"), "y");
}

TEST_F(RulesTest, TouchAndGatChangeExptime) {
  const uint32_t now = common::now_unix();
  put("t", "v", {}, 0, now + 100);
  EXPECT_TRUE(touch("t", now + 5000));
  EXPECT_EQ(look("t")->exptime, now + 5000);
  std::string seen;
  auto grab = [&](const store::ItemView& v) { seen = std::string(v.value); };
  ItemFn fn = grab;
  EXPECT_TRUE(rules->touch_item("t", Store::hash("t"), 0, &fn));
  EXPECT_EQ(seen, "v");
  EXPECT_EQ(look("t")->exptime, 0u);
  EXPECT_TRUE(touch("t", now - 1));
  EXPECT_EQ(val("t"), "<miss>");
  EXPECT_FALSE(touch("nope", 0));
}

TEST_F(RulesTest, IncrDecrFollowMemcached) {
  DeltaOut o;
  EXPECT_EQ(delta("n", {}, &o), DeltaResult::not_found);
  put("n", "10");
  EXPECT_EQ(delta("n", {.delta = 5}, &o), DeltaResult::ok);
  EXPECT_EQ(o.value, 15u);
  EXPECT_EQ(delta("n", {.incr = false, .delta = 6}, &o), DeltaResult::ok);
  EXPECT_EQ(o.value, 9u);
  EXPECT_EQ(val("n"), "9 ");  // shorter result written in place, padded with a space
  EXPECT_EQ(delta("n", {.incr = false, .delta = 100}, &o), DeltaResult::ok);
  EXPECT_EQ(o.value, 0u);  // decr stops at zero
  EXPECT_EQ(delta("n", {.delta = 123456}, &o), DeltaResult::ok);
  EXPECT_EQ(val("n"), "123456");  // grew: a new item
  put("max", "18446744073709551615");
  EXPECT_EQ(delta("max", {.delta = 2}, &o), DeltaResult::ok);
  EXPECT_EQ(o.value, 1u);  // wraps at 2^64
  for (const char* bad : {"abc", "", "-5", "18446744073709551616"}) {
    put("bad", bad);
    EXPECT_EQ(delta("bad", {}, &o), DeltaResult::non_numeric) << bad;
  }
}

TEST_F(RulesTest, DeltaCasTouchAndVivify) {
  DeltaOut o;
  const uint32_t exp = common::now_unix() + 100;
  EXPECT_EQ(delta("n", {.vivify = true, .initial = 42, .vivify_exptime = exp}, &o),
            DeltaResult::created);
  EXPECT_EQ(o.value, 42u);
  auto g = look("n");
  EXPECT_EQ(g->value, "42");
  EXPECT_EQ(g->exptime, exp);
  EXPECT_EQ(g->cas, o.cas);
  EXPECT_EQ(delta("n", {.delta = 8, .vivify = true, .initial = 1}, &o), DeltaResult::ok);
  EXPECT_EQ(o.value, 50u);
  EXPECT_EQ(o.exptime, exp);
  EXPECT_EQ(delta("n", {.cas_in = o.cas + 1}, &o), DeltaResult::exists);
  EXPECT_EQ(delta("n", {.incr = false, .delta = 45, .cas_in = o.cas, .touch = true, .exptime = 0},
                  &o),
            DeltaResult::ok);
  g = look("n");
  EXPECT_EQ(g->value, "5 ");
  EXPECT_EQ(g->exptime, 0u);
  EXPECT_EQ(g->cas, o.cas);
  EXPECT_EQ(delta("n", {.delta = 995, .touch = true, .exptime = exp}, &o), DeltaResult::ok);
  g = look("n");
  EXPECT_EQ(g->value, "1000");
  EXPECT_EQ(g->exptime, exp);
  put("e", "");
  EXPECT_EQ(delta("e", {.cas_in = 1}, &o), DeltaResult::non_numeric);  // before the cas
  put("t", "abc");
  EXPECT_EQ(delta("t", {.cas_in = 1}, &o), DeltaResult::exists);
}

TEST_F(RulesTest, TooLargeSetDropsTheOldValue) {
  put("big", "old");
  std::string v(s->value_max(3) + 1, 'x');
  EXPECT_EQ(rules->update("big", Store::hash("big"), v, 0, 0, {}, nullptr, true),
            StoreResult::too_large);
  EXPECT_EQ(val("big"), "<miss>");
  v.pop_back();
  EXPECT_EQ(put("big", v), StoreResult::stored);
  EXPECT_EQ(val("big"), v);
}

TEST_F(RulesTest, BinaryKeyMarkIsKeptBySetAndDroppedByAppend) {
  put("bin", "v", {.key_binary = true});
  EXPECT_TRUE(look("bin")->marks & marks::kKeyBinary);
  put("bin", "w", {.mode = Mode::append, .key_binary = true});
  EXPECT_FALSE(look("bin")->marks & marks::kKeyBinary);  // memcached's appended copy loses it
}

TEST_F(RulesTest, InvalidatedCasStoresStaleKeepingExptimeAndWin) {
  const uint32_t exp = common::now_unix() + 500;
  put("other", "x");  // so that k's cas is above 1: a cas of 0 is no cas (never stale)
  put("k", "v1", {}, 0, exp);
  const uint64_t cas = last_cas;
  EXPECT_EQ(put("k", "v2", {.mode = Mode::cas, .cas_in = cas - 1}), StoreResult::exists);
  EXPECT_EQ(put("k", "v2", {.mode = Mode::cas, .cas_in = cas + 1, .invalidate = true}),
            StoreResult::exists);
  s->update(s->worker(0), "k", Store::hash("k"), {}, [](const store::ItemView*, store::Change& ch) {
    ch.op = store::Change::Op::edit;
    ch.marks |= marks::kWinSent;
  });
  EXPECT_EQ(put("k", "v2", {.mode = Mode::cas, .cas_in = cas - 1, .invalidate = true}),
            StoreResult::stored);
  auto g = look("k");
  EXPECT_EQ(g->value, "v2");
  EXPECT_EQ(g->exptime, exp);
  EXPECT_EQ(g->marks & (marks::kStale | marks::kWinSent), marks::kStale | marks::kWinSent);
  put("k", "v3");
  EXPECT_EQ(look("k")->marks, 0);
}

TEST_F(RulesTest, DeleteInvalidateAndCas) {
  EXPECT_EQ(del("k"), DeleteResult::not_found);
  put("k", "v");
  const uint64_t cas = last_cas;
  EXPECT_EQ(del("k", {.has_cas = true, .cas_in = cas + 1}), DeleteResult::exists);
  const uint32_t exp = common::now_unix() + 30;
  EXPECT_EQ(del("k", {.invalidate = true, .touch = true, .exptime = exp}),
            DeleteResult::invalidated);
  auto g = look("k");
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->marks & marks::kStale);
  EXPECT_FALSE(g->marks & marks::kWinSent);
  EXPECT_NE(g->cas, cas);
  EXPECT_EQ(g->exptime, exp);
  EXPECT_EQ(del("k", {.has_cas = true, .cas_in = g->cas}), DeleteResult::deleted);
  EXPECT_EQ(val("k"), "<miss>");
}

// A deleted value stays, hidden, for the stale window: no plain read sees it, curr_items
// drops as memcached's does, and it goes once the window has passed.
TEST_F(RulesTest, DeleteKeepsTheValueHiddenForTheStaleWindow) {
  put("k", "old", {}, 5);
  EXPECT_EQ(del("k"), DeleteResult::deleted);
  EXPECT_EQ(val("k"), "<miss>");
  EXPECT_EQ(s->stats().curr_items, 0u);
  EXPECT_EQ(s->stats().hidden_items, 1u);
  auto g = look("k", true);
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->hidden);
  EXPECT_EQ(g->value, "old");
  EXPECT_EQ(g->flags, 5u);
  EXPECT_EQ(g->marks & marks::kDeleted, marks::kDeleted);
  const uint32_t now = common::now_unix();
  EXPECT_GE(g->exptime, now + 9);
  EXPECT_LE(g->exptime, now + 11);
  // Absent to every classic rule.
  EXPECT_EQ(del("k"), DeleteResult::not_found);
  EXPECT_FALSE(touch("k", 0));
  EXPECT_EQ(put("k", "x", {.mode = Mode::replace}), StoreResult::not_stored);
  EXPECT_EQ(put("k", "new", {.mode = Mode::add}), StoreResult::stored);
  EXPECT_EQ(val("k"), "new");
  EXPECT_EQ(s->stats().hidden_items, 0u);
  // With no stale window, a delete keeps nothing.
  std::string err;
  ASSERT_TRUE(tunables->set("stale_window", int64_t{0}, &err));
  EXPECT_EQ(del("k"), DeleteResult::deleted);
  EXPECT_FALSE(look("k", true));
}

TEST_F(RulesTest, HoldOffRefusesAddOnlyAndIsClampedAndTaken) {
  put("k", "v");
  EXPECT_EQ(del("k", {.holdoff = 30}), DeleteResult::deleted);
  EXPECT_EQ(put("k", "x", {.mode = Mode::add}), StoreResult::not_stored);
  auto g = look("k", true);
  ASSERT_TRUE(g && g->ext);
  const uint32_t now = common::now_unix();
  EXPECT_GE(g->ext->holdoff_until, now + 29);
  EXPECT_LE(g->ext->holdoff_until, now + 31);
  EXPECT_GE(g->exptime, g->ext->holdoff_until);  // the tombstone lives as long as the hold-off
  EXPECT_EQ(g->value, "v");                      // and keeps the value as stale meanwhile
  // set still works, and a stored value ends the hold-off.
  EXPECT_EQ(put("k", "set", {}), StoreResult::stored);
  EXPECT_EQ(val("k"), "set");
  EXPECT_EQ(s->stats().hidden_items, 0u);
  // A hold-off on a key that holds nothing is a tombstone; absurd ones are clamped.
  EXPECT_EQ(del("none", {.holdoff = 1'000'000'000}), DeleteResult::not_found);
  g = look("none", true);
  ASSERT_TRUE(g && g->ext);
  EXPECT_LE(g->ext->holdoff_until, common::now_unix() + 61);
  EXPECT_EQ(g->value, "");
  EXPECT_EQ(put("none", "x", {.mode = Mode::add}), StoreResult::not_stored);
  EXPECT_EQ(put("none", "x", {.mode = Mode::cas, .cas_in = 1}), StoreResult::not_found);
  EXPECT_EQ(board->totals().holdoff_refused, 2u);
  // With the maximum at 0, hold-offs are off: a plain delete.
  std::string err;
  ASSERT_TRUE(tunables->set("holdoff_max", int64_t{0}, &err));
  put("z", "v");
  ASSERT_TRUE(tunables->set("stale_window", int64_t{0}, &err));
  EXPECT_EQ(del("z", {.holdoff = 30}), DeleteResult::deleted);
  EXPECT_FALSE(look("z", true));
  EXPECT_EQ(put("z", "x", {.mode = Mode::add}), StoreResult::stored);
}

TEST_F(RulesTest, ADeleteEndsALeaseOnAHiddenKey) {
  // A lease placeholder, as lease-get leaves one.
  s->update(s->worker(0), "p", Store::hash("p"), {std::string_view("", 0), false},
            [](const store::ItemView*, store::Change& ch) {
              ch.op = store::Change::Op::write;
              ch.hidden = true;
              ch.has_ext = true;
              ch.ext.token = 77;
              ch.ext.token_time = common::now_unix();
              ch.exptime = common::now_unix() + 10;
            });
  ASSERT_TRUE(look("p", true));
  EXPECT_EQ(look("p", true)->ext->token, 77u);
  EXPECT_EQ(del("p"), DeleteResult::not_found);  // memcached's answer: there was no value
  EXPECT_FALSE(look("p", true));                 // but the lease is gone, and its placeholder
  // A deleted value with a lease keeps the value, without the lease.
  put("d", "v");
  del("d");
  s->update(s->worker(0), "d", Store::hash("d"), {}, [](const store::ItemView* cur, store::Change& ch) {
    ch.op = store::Change::Op::edit;
    ch.has_ext = true;
    ch.ext = marks::ext_of(cur);
    ch.ext.token = 99;
    ch.ext.token_time = common::now_unix();
  });
  EXPECT_EQ(look("d", true)->ext->token, 99u);
  EXPECT_EQ(del("d"), DeleteResult::not_found);
  auto g = look("d", true);
  ASSERT_TRUE(g && g->ext);
  EXPECT_EQ(g->ext->token, 0u);
  EXPECT_EQ(g->value, "v");
}

// Many readers of one invalidated key: exactly one is told to refill (W); many mg N of one
// missing key: exactly one creates it. Each client thread has its own executor.
TEST(RulesConcurrency, OneWinnerPerInvalidationAndPerVivify) {
  constexpr int kThreads = 4, kRounds = 300;
  auto s = open_store(8, kThreads + 1);
  Settings settings;
  Tunables tunables(settings.tunables);
  StatsBoard board(kThreads + 1);
  ExecShared shared(*s, settings, tunables, board, 0);
  std::vector<std::unique_ptr<Executor>> ex;
  for (int t = 0; t <= kThreads; ++t) ex.push_back(std::make_unique<Executor>(shared, t));
  auto run = [&](int t, std::string_view in) {
    common::ByteBuf out;
    auto vmax = [&](size_t k) { return s->value_max(k); };
    text::ParseResult r = text::parse(in, vmax);
    EXPECT_EQ(r.status, text::Status::ready);
    ex[t]->execute(r.req, out);
    return std::string(out.view());
  };
  ASSERT_EQ(run(0, "set hot 0 0 1\r\nv\r\n"), "STORED\r\n");
  std::atomic<int> wins{0}, created{0}, done{0}, round{-1};
  auto client = [&](int t) {
    for (int r = 0; r < kRounds; ++r) {
      while (round.load() < r) std::this_thread::yield();
      std::string a = run(t, "mg hot v\r\n");
      std::string b = run(t, "mg viv" + std::to_string(r) + " N30\r\n");
      wins.fetch_add(a.find(" W") != std::string::npos);
      created.fetch_add(b.find(" W") != std::string::npos);
      done.fetch_add(1);
    }
  };
  std::vector<std::thread> th;
  for (int t = 1; t <= kThreads; ++t) th.emplace_back(client, t);
  for (int r = 0; r < kRounds; ++r) {
    while (done.load() < kThreads * r) std::this_thread::yield();
    EXPECT_EQ(run(0, "md hot I\r\n"), "HD\r\n");
    round.store(r);
  }
  for (auto& t : th) t.join();
  EXPECT_EQ(wins.load(), kRounds);
  EXPECT_EQ(created.load(), kRounds);
}

// Mixed traffic from several threads on a few keys: every read sees a whole value and every
// counter stays a number, whatever sets, invalidations, deletes, deltas and wins interleave.
TEST(RulesConcurrency, MixedTrafficKeepsValuesWhole) {
  constexpr int kThreads = 4, kOps = 20000;
  auto s = open_store(64, kThreads);
  StatsBoard board(kThreads);
  Tunables tunables(TunableValues{});
  std::atomic<uint64_t> bad{0};
  auto client = [&](int t) {
    ItemRules rules(*s, s->worker(t), board.worker(t), tunables);
    std::mt19937 rng(t);
    common::ByteBuf out;
    uint64_t seen_cas = 0;
    for (int i = 0; i < kOps; ++i) {
      const std::string key = "k" + std::to_string(rng() % 8);
      const std::string num = "n" + std::to_string(rng() % 4);
      const size_t len = rng() % 300;
      const std::string value(len, static_cast<char>('a' + len % 26));
      DeltaOut o;
      const uint64_t kh = Store::hash(key), nh = Store::hash(num);
      switch (rng() % 6) {
        case 0:
          rules.store_item(key, kh, value, 0, 0, {.key_binary = (rng() & 1) != 0}, &seen_cas);
          break;
        case 1:
          rules.store_item(key, kh, value, 0, 0,
                           {.mode = Mode::cas, .cas_in = seen_cas, .invalidate = true}, &seen_cas);
          break;
        case 2:
          rules.delete_item(key, kh, {.invalidate = (rng() & 1) != 0, .holdoff = rng() % 3});
          break;
        case 3:
          rules.delta_item(num, nh, {.incr = (rng() & 1) != 0, .delta = rng() % 1000,
                                     .vivify = true, .initial = rng() % 100},
                           &o);
          break;
        default: {
          const bool counter = rng() & 1;
          out.clear();
          bool whole_read = true;
          const std::string& k = counter ? num : key;
          s->read(s->worker(t), k, Store::hash(k), {.hidden = true}, out,
                  [&](const store::ItemView& iv) {
                    std::string_view v = iv.value;
                    whole_read = counter ? (v.empty() || (v[0] >= '0' && v[0] <= '9'))
                                         : v.empty() || (v.find_first_not_of(v[0]) ==
                                                             std::string_view::npos &&
                                                         static_cast<size_t>(v[0]) == 'a' + v.size() % 26);
                    seen_cas = iv.cas;
                    return true;
                  });
          if (!whole_read) bad.fetch_add(1);
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
}  // namespace cachet::dataplane
