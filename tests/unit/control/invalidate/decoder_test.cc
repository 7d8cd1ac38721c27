// The decoder and the mapper on pgoutput streams: which keys each kind of row change names,
// under each replica identity; key messages; transactions split into units; malformed input.
#include "control/invalidate/decoder.hh"

#include <gtest/gtest.h>

#include <algorithm>

#include <fmt/format.h>

#include "control/invalidate/mapper.hh"
#include "tests/unit/control/invalidate/pg_bytes.hh"

namespace cachet::invalidate {
namespace {

using std::nullopt;

class DecoderTest : public ::testing::Test {
 protected:
  void SetUp() override { make({RuleConfig{"public", "users", {"user:{id}", "mail:{email}"}, 1}}); }
  void make(std::vector<RuleConfig> rules, uint64_t unit_rows = 1000) {
    rules_ = compile_rules(rules);
    rule_stats_ = std::vector<RuleStats>(rules.size());
    decoder_ = std::make_unique<Decoder>(rules_, "cachet", unit_rows, &stats_, &rule_stats_);
    std::vector<PoolRoute> routes(1);
    routes[0].router = true;
    mapper_ = std::make_unique<Mapper>(rules_, std::move(routes), &stats_, &rule_stats_);
  }
  // Feeds messages; returns the units completed, mapped to keys.
  std::vector<UnitPtr> feed(const std::vector<std::string>& msgs) {
    std::vector<UnitPtr> out;
    for (const std::string& m : msgs) {
      std::string err;
      EXPECT_TRUE(decoder_->feed(m, &out, &err)) << err;
    }
    for (auto& u : out) mapper_->map(*u);
    return out;
  }
  // The sorted keys of one committed transaction of msgs.
  std::vector<std::string> keys_of(const std::vector<std::string>& changes,
                                   char ident = 'd') {
    std::vector<std::string> msgs = {
        test::relation_msg(1, "public", "users", ident,
                           {{"id", true}, {"email", false}, {"bio", false}}),
        test::begin_msg(0x10)};
    msgs.insert(msgs.end(), changes.begin(), changes.end());
    msgs.push_back(test::commit_msg(0x10, 0x20));
    auto units = feed(msgs);
    EXPECT_EQ(units.size(), 1u);
    if (units.empty()) return {};
    EXPECT_EQ(units[0]->end_lsn, 0x20u);
    EXPECT_TRUE(units[0]->commit);
    std::vector<std::string> k = units[0]->keys;
    std::sort(k.begin(), k.end());
    return k;
  }
  using Keys = std::vector<std::string>;

  Stats stats_;
  std::vector<RuleStats> rule_stats_;
  std::shared_ptr<const RuleSet> rules_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<Mapper> mapper_;
};

TEST_F(DecoderTest, InsertNamesTheNewRowsKeys) {
  EXPECT_EQ(keys_of({test::insert_msg(1, {"7", "a@x", "hi"})}), (Keys{"mail:a@x", "user:7"}));
  EXPECT_EQ(rule_stats_[0].rows.get(), 1u);
}

TEST_F(DecoderTest, UpdateWithoutOldRowUnderDefaultIdentity) {
  // Identity (id) unchanged: the old user key is the new one; the old mail key is unknown.
  EXPECT_EQ(keys_of({test::update_msg(1, 0, {}, {"7", "b@x", "hi"})}),
            (Keys{"mail:b@x", "user:7"}));
  EXPECT_EQ(rule_stats_[0].unresolved.get(), 1u);
}

TEST_F(DecoderTest, UpdateOfTheKeyUnderDefaultIdentity) {
  // 'K': the old identity columns only.
  EXPECT_EQ(keys_of({test::update_msg(1, 'K', {"6", nullopt, nullopt}, {"7", "b@x", "hi"})}),
            (Keys{"mail:b@x", "user:6", "user:7"}));
  EXPECT_EQ(rule_stats_[0].unresolved.get(), 1u);
}

TEST_F(DecoderTest, UpdateUnderFullIdentityNamesOldAndNewKeys) {
  EXPECT_EQ(keys_of({test::update_msg(1, 'O', {"7", "a@x", "hi"}, {"7", "b@x", "hi"})}, 'f'),
            (Keys{"mail:a@x", "mail:b@x", "user:7"}));
  EXPECT_EQ(rule_stats_[0].unresolved.get(), 0u);
}

TEST_F(DecoderTest, DeleteNamesTheOldRowsKeys) {
  EXPECT_EQ(keys_of({test::delete_msg(1, 'K', {"7", nullopt, nullopt})}), (Keys{"user:7"}));
  EXPECT_EQ(rule_stats_[0].unresolved.get(), 1u);
  EXPECT_EQ(keys_of({test::delete_msg(1, 'O', {"8", "c@x", "b"})}, 'f'),
            (Keys{"mail:c@x", "user:8"}));
}

TEST_F(DecoderTest, NullNamesNoKeyAndUnchangedToastComesFromTheOldRow) {
  make({RuleConfig{"public", "users", {"user:{id}", "mail:{email}", "bio:{bio}"}, 1}});
  EXPECT_EQ(keys_of({test::insert_msg(1, {"7", nullopt, "x"})}), (Keys{"bio:x", "user:7"}));
  EXPECT_EQ(keys_of({test::update_msg(1, 'O', {"7", "a", "long"}, {"7", "a", "\x01u"})}, 'f'),
            (Keys{"bio:long", "mail:a", "user:7"}));
}

TEST_F(DecoderTest, KeysThatMemcachedRefusesAreNotSent) {
  const std::string long_mail(260, 'm');
  EXPECT_EQ(keys_of({test::insert_msg(1, {"7", "has space", "x"}),
                     test::insert_msg(1, {"8", long_mail, "x"})}),
            (Keys{"user:7", "user:8"}));
  EXPECT_EQ(stats_.keys_rejected.get(), 2u);
}

TEST_F(DecoderTest, TablesWithoutARuleAndMissingColumns) {
  auto units = feed({test::relation_msg(2, "public", "other", 'd', {{"id", true}}),
                     test::relation_msg(1, "public", "users", 'd', {{"id", true}}),
                     test::begin_msg(1), test::insert_msg(2, {"1"}), test::insert_msg(1, {"5"}),
                     test::commit_msg(1, 2)});
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0]->keys, (Keys{"user:5"}));  // mail:{email}: no such column in the stream
  EXPECT_EQ(stats_.rows_unmapped.get(), 1u);
  EXPECT_EQ(rule_stats_[0].unresolved.get(), 1u);
}

TEST_F(DecoderTest, KeyMessages) {
  auto units = feed({test::begin_msg(1), test::message_msg(true, "cachet", " a b\nc\r\n\tb "),
                     test::message_msg(true, "other", "x"), test::commit_msg(1, 2)});
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0]->keys, (Keys{"a", "b", "c"}));
  EXPECT_EQ(stats_.messages.get(), 1u);
}

TEST_F(DecoderTest, BadKeyMessages) {
  const std::string long_key(251, 'k');
  auto units = feed({test::begin_msg(1), test::message_msg(true, "cachet", "ok " + long_key),
                     test::message_msg(true, "cachet", std::string("\x01\x02 \x7f", 4)),
                     test::message_msg(true, "cachet", "   "), test::commit_msg(1, 2)});
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0]->keys, (Keys{"ok"}));
  EXPECT_EQ(stats_.keys_rejected.get(), 3u);
  EXPECT_EQ(stats_.messages_rejected.get(), 2u);
}

TEST_F(DecoderTest, NonTransactionalMessageIsItsOwnUnit) {
  auto units = feed({test::message_msg(false, "cachet", "k1")});
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0]->keys, (Keys{"k1"}));
  EXPECT_EQ(units[0]->end_lsn, 0u);  // confirms nothing by itself
}

TEST_F(DecoderTest, LargeTransactionsAreSplitAndSeqsAreContiguous) {
  make({RuleConfig{"public", "users", {"user:{id}"}, 1}}, 2);
  std::vector<std::string> msgs = {test::relation_msg(1, "public", "users", 'd', {{"id", true}}),
                                   test::begin_msg(1)};
  for (int i = 0; i < 5; ++i) msgs.push_back(test::insert_msg(1, {std::to_string(i)}));
  msgs.push_back(test::commit_msg(1, 99));
  msgs.push_back(test::begin_msg(2));
  msgs.push_back(test::insert_msg(1, {"9"}));
  msgs.push_back(test::commit_msg(2, 100));
  auto units = feed(msgs);
  ASSERT_EQ(units.size(), 4u);  // 2 + 2 + 1 rows, then the second transaction
  for (size_t i = 0; i < units.size(); ++i) EXPECT_EQ(units[i]->seq, i);
  EXPECT_EQ(units[0]->end_lsn, 0u);
  EXPECT_EQ(units[1]->end_lsn, 0u);
  EXPECT_EQ(units[2]->end_lsn, 99u);
  EXPECT_EQ(units[2]->keys, (Keys{"user:4"}));
  EXPECT_EQ(units[3]->end_lsn, 100u);
  // The reader's counter sees the same boundaries.
  UnitCounter c(2);
  int closes = 0;
  for (const std::string& m : msgs) closes += c.feed(m);
  EXPECT_EQ(closes, 4);
}

TEST_F(DecoderTest, MalformedMessageStillClosesItsUnit) {
  std::vector<UnitPtr> out;
  std::string err;
  EXPECT_TRUE(decoder_->feed(test::begin_msg(1), &out, &err));
  EXPECT_FALSE(decoder_->feed("C\x00", &out, &err));  // a cut Commit
  EXPECT_FALSE(err.empty());
  ASSERT_EQ(out.size(), 1u);  // the budget the reader counted is given back
  EXPECT_EQ(out[0]->end_lsn, 0u);
  EXPECT_EQ(stats_.decode_errors.get(), 1u);
}

TEST_F(DecoderTest, TruncateIsCounted) {
  feed({test::relation_msg(1, "public", "users", 'd', {{"id", true}}), test::begin_msg(1),
        test::truncate_msg({1}), test::commit_msg(1, 2)});
  EXPECT_EQ(rule_stats_[0].truncates.get(), 1u);
}

TEST(MapperRoutes, EveryPoolGetsATargetPerKey) {
  std::vector<PoolRoute> routes(2);
  std::vector<ServerSpec> specs(3);
  for (int i = 0; i < 3; ++i) {
    specs[i].host = "10.0.0." + std::to_string(i);
    specs[i].port = 11211;
    specs[i].name = specs[i].host;
  }
  routes[0].ring = KetamaRing(specs);
  routes[1].router = true;
  Stats stats;
  std::vector<RuleStats> rs;
  Mapper m(compile_rules({}), routes, &stats, &rs);
  Unit u;
  for (int i = 0; i < 50; ++i) u.message_keys.push_back(fmt::format("k{}", i % 40));
  m.map(u);
  ASSERT_EQ(u.keys.size(), 40u);  // duplicates within a unit are named once
  ASSERT_EQ(u.targets.size(), 2u);
  for (size_t i = 0; i < u.keys.size(); ++i) {
    EXPECT_EQ(u.targets[0][i], routes[0].ring.server_for(u.keys[i], KeyHash::md5));
    EXPECT_EQ(u.targets[1][i], 0u);
  }
}

}  // namespace
}  // namespace cachet::invalidate
