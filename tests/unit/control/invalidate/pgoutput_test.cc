// pgoutput and walsender frame parsing: every message type, and every truncation of every
// message is refused cleanly.
#include "control/invalidate/pgoutput.hh"

#include <gtest/gtest.h>

#include "tests/unit/control/invalidate/pg_bytes.hh"

namespace cachet::invalidate::pg {
namespace {

using test::Bytes;

TEST(PgOutput, BeginCommitMessage) {
  Decoded d;
  std::string err;
  ASSERT_TRUE(parse_message(test::begin_msg(0x16B374D848, 42, 9), &d, &err)) << err;
  auto& b = std::get<Begin>(d);
  EXPECT_EQ(b.final_lsn, 0x16B374D848u);
  EXPECT_EQ(b.commit_time, 42);
  EXPECT_EQ(b.xid, 9u);
  ASSERT_TRUE(parse_message(test::commit_msg(5, 7, 11), &d, &err)) << err;
  EXPECT_EQ(std::get<Commit>(d).end_lsn, 7u);
  EXPECT_EQ(std::get<Commit>(d).commit_time, 11);
  const std::string msg = test::message_msg(true, "cachet", "a b", 77);  // d views into it
  ASSERT_TRUE(parse_message(msg, &d, &err)) << err;
  auto& m = std::get<Message>(d);
  EXPECT_TRUE(m.transactional);
  EXPECT_EQ(m.lsn, 77u);
  EXPECT_EQ(m.prefix, "cachet");
  EXPECT_EQ(m.content, "a b");
  EXPECT_EQ(format_lsn(0x16B374D848), "16/B374D848");
}

TEST(PgOutput, RelationAndChanges) {
  Decoded d;
  std::string err;
  ASSERT_TRUE(parse_message(test::relation_msg(16384, "public", "users", 'd',
                                                {{"id", true}, {"email", false}}),
                            &d, &err)) << err;
  auto& r = std::get<Relation>(d);
  EXPECT_EQ(r.id, 16384u);
  EXPECT_EQ(r.schema, "public");
  EXPECT_EQ(r.name, "users");
  ASSERT_EQ(r.columns.size(), 2u);
  EXPECT_TRUE(r.columns[0].key);
  EXPECT_EQ(r.columns[1].name, "email");

  const std::string ins_msg = test::insert_msg(1, {"7", std::nullopt});
  ASSERT_TRUE(parse_message(ins_msg, &d, &err)) << err;
  auto& ins = std::get<Change>(d);
  EXPECT_EQ(ins.op, 'I');
  ASSERT_EQ(ins.new_row.size(), 2u);
  EXPECT_EQ(ins.new_row[0].kind, 't');
  EXPECT_EQ(ins.new_row[0].data, "7");
  EXPECT_EQ(ins.new_row[1].kind, 'n');

  const std::string up_msg = test::update_msg(1, 'K', {"6", std::nullopt}, {"7", "\x01u"});
  ASSERT_TRUE(parse_message(up_msg, &d, &err)) << err;
  auto& up = std::get<Change>(d);
  EXPECT_EQ(up.old_kind, 'K');
  EXPECT_EQ(up.old_row[0].data, "6");
  EXPECT_EQ(up.new_row[1].kind, 'u');

  ASSERT_TRUE(parse_message(test::update_msg(1, 0, {}, {"7", "x"}), &d, &err)) << err;
  EXPECT_EQ(std::get<Change>(d).old_kind, 0);

  ASSERT_TRUE(parse_message(test::delete_msg(1, 'O', {"7", "x"}), &d, &err)) << err;
  EXPECT_EQ(std::get<Change>(d).old_kind, 'O');
  EXPECT_TRUE(std::get<Change>(d).new_row.empty());

  ASSERT_TRUE(parse_message(test::truncate_msg({3, 4}), &d, &err)) << err;
  EXPECT_EQ(std::get<Truncate>(d).relids, (std::vector<uint32_t>{3, 4}));
}

TEST(PgOutput, EveryTruncationIsRefused) {
  const std::vector<std::string> msgs = {
      test::begin_msg(1), test::commit_msg(1, 2),
      test::message_msg(true, "p", "k1 k2"),
      test::relation_msg(1, "s", "t", 'f', {{"a", true}, {"b", false}}),
      test::insert_msg(1, {"1", std::nullopt, "\x01u"}),
      test::update_msg(1, 'O', {"1"}, {"2"}), test::delete_msg(1, 'K', {"1"}),
      test::truncate_msg({1, 2})};
  for (const std::string& m : msgs) {
    for (size_t n = 0; n < m.size(); ++n) {
      Decoded d;
      std::string err;
      EXPECT_FALSE(parse_message(m.substr(0, n), &d, &err))
          << "type " << m[0] << " cut at " << n;
      EXPECT_FALSE(err.empty());
    }
    Decoded d;
    std::string err;
    EXPECT_FALSE(parse_message(m + "x", &d, &err)) << "trailing byte after " << m[0];
  }
}

TEST(PgOutput, BadInput) {
  Decoded d;
  std::string err;
  EXPECT_FALSE(parse_message("Z123", &d, &err));
  EXPECT_NE(err.find("unknown pgoutput message type 0x5a"), std::string::npos) << err;
  EXPECT_FALSE(parse_message("", &d, &err));
  // A tuple value kind that does not exist.
  EXPECT_FALSE(parse_message(Bytes('I').u32(1).u8('N').u16(1).u8('q').take(), &d, &err));
  // A Delete without an old tuple.
  EXPECT_FALSE(parse_message(Bytes('D').u32(1).u8('N').tuple({"1"}).take(), &d, &err));
  // Origin and Type messages are accepted and ignored.
  EXPECT_TRUE(parse_message(Bytes('O').u64(1).str("o").take(), &d, &err));
  EXPECT_EQ(std::get<Ignored>(d).type, 'O');
}

TEST(PgFrames, XLogDataKeepaliveAndStatus) {
  Frame f;
  std::string err;
  const std::string x = Bytes('w').u64(10).u64(20).u64(30).raw("Bxyz").take();
  ASSERT_TRUE(parse_frame(x, &f, &err)) << err;
  EXPECT_EQ(std::get<XLogData>(f).start, 10u);
  EXPECT_EQ(std::get<XLogData>(f).wal_end, 20u);
  EXPECT_EQ(std::get<XLogData>(f).payload, "Bxyz");
  ASSERT_TRUE(parse_frame(Bytes('k').u64(99).u64(1).u8(1).take(), &f, &err)) << err;
  EXPECT_EQ(std::get<Keepalive>(f).wal_end, 99u);
  EXPECT_TRUE(std::get<Keepalive>(f).reply_requested);
  EXPECT_FALSE(parse_frame(Bytes('k').u64(99).take(), &f, &err));
  EXPECT_FALSE(parse_frame(Bytes('w').u64(1).take(), &f, &err));
  EXPECT_FALSE(parse_frame("q", &f, &err));

  const std::string s = status_update(0x0102030405060708, 0x1112131415161718, 5, true);
  ASSERT_EQ(s.size(), 34u);
  EXPECT_EQ(s[0], 'r');
  EXPECT_EQ(s.substr(1, 8), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(s.substr(9, 8), std::string("\x11\x12\x13\x14\x15\x16\x17\x18", 8));
  EXPECT_EQ(s.substr(17, 8), s.substr(9, 8));  // applied = flushed
  EXPECT_EQ(s[33], 1);
}

}  // namespace
}  // namespace cachet::invalidate::pg
