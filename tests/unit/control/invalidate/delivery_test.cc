// Delivery bookkeeping: server queues merge a key waiting for the same packet, positions say
// what is settled, and the tracker confirms a transaction only when every server it touched
// settled it, in stream order, within the in-flight budget. Also the reply lines.
#include <gtest/gtest.h>

#include "control/invalidate/destination.hh"
#include "control/invalidate/reply.hh"
#include "control/invalidate/tracker.hh"

namespace cachet::invalidate {
namespace {

Server make_server(const std::string& addr) {
  ServerSpec s;
  std::string err;
  EXPECT_TRUE(parse_server_spec(addr, &s, &err));
  return Server(0, "p", s, 0);
}

TEST(ServerQueue, MergesWaitingKeysAndTakesInOrder) {
  Server s = make_server("10.0.0.1:11211");
  Counter merged;
  bool first, full;
  EXPECT_EQ(s.enqueue("a", 3, &first, &full, &merged), 1u);
  EXPECT_TRUE(first);
  EXPECT_EQ(s.enqueue("b", 3, &first, &full, &merged), 2u);
  EXPECT_FALSE(first);
  EXPECT_FALSE(full);
  EXPECT_EQ(s.enqueue("a", 3, &first, &full, &merged), 2u);  // merged: no new position
  EXPECT_EQ(merged.get(), 1u);
  EXPECT_EQ(s.enqueue("c", 3, &first, &full, &merged), 3u);
  EXPECT_TRUE(full);
  Batch b;
  ASSERT_TRUE(s.take(2, &b));
  EXPECT_EQ(b.keys, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(b.end_pos, 2u);
  EXPECT_EQ(s.enqueue("a", 3, &first, &full, &merged), 4u);  // gone out: queued again
  ASSERT_TRUE(s.take(10, &b));
  EXPECT_EQ(b.keys, (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(b.end_pos, 4u);
  EXPECT_FALSE(s.take(10, &b));
  EXPECT_EQ(s.oldest_us(), 0);
}

TEST(Tracker, ConfirmsInOrderWhenEveryServerSettled) {
  Stats stats;
  Tracker t(4, &stats);
  Server a = make_server("10.0.0.1:1"), b = make_server("10.0.0.2:1");
  t.reserve(3);
  t.add(0, 100, 0, {{&a, 1}, {&b, 1}});
  t.add(1, 0, 0, {{&a, 2}});  // a part of a large transaction: no end LSN
  t.add(2, 300, 0, {{&b, 2}});
  EXPECT_EQ(t.confirmed_lsn(), 0u);
  a.settle(2);
  t.advance();
  EXPECT_EQ(t.confirmed_lsn(), 0u);  // unit 0 waits for b
  b.settle(1);
  t.advance();
  EXPECT_EQ(t.confirmed_lsn(), 100u);
  EXPECT_EQ(t.inflight(), 1u);
  b.settle(2);
  t.advance();
  EXPECT_EQ(t.confirmed_lsn(), 300u);
  EXPECT_EQ(t.inflight(), 0u);
  t.confirm_idle(400);
  EXPECT_EQ(t.confirmed_lsn(), 400u);
  EXPECT_EQ(stats.confirmed_lsn.get(), 400u);
}

TEST(Tracker, BudgetIsBackPressure) {
  Stats stats;
  Tracker t(2, &stats);
  Server a = make_server("10.0.0.1:1");
  t.reserve(2);
  EXPECT_FALSE(t.wait_for_room(1));
  t.add(0, 10, 0, {{&a, 1}});
  t.add(1, 20, 0, {});
  t.confirm_idle(99);  // not idle: nothing confirmed past what settled
  EXPECT_EQ(t.confirmed_lsn(), 0u);
  a.settle(1);
  t.advance();
  EXPECT_TRUE(t.wait_for_room(1));
  EXPECT_EQ(t.confirmed_lsn(), 20u);
}

TEST(Reply, Lines) {
  EXPECT_EQ(classify_reply("DELETED"), Reply::deleted);
  EXPECT_EQ(classify_reply("NOT_FOUND"), Reply::not_found);
  EXPECT_EQ(classify_reply("VERSION 1.6.18"), Reply::version);
  EXPECT_EQ(classify_reply("CLIENT_ERROR bad command line format"), Reply::client_error);
  EXPECT_EQ(classify_reply("SERVER_ERROR out of memory"), Reply::server_error);
  EXPECT_EQ(classify_reply("ERROR"), Reply::error);
  EXPECT_EQ(classify_reply("DELETED "), Reply::garbage);
  EXPECT_EQ(classify_reply("HTTP/1.1 400 Bad Request"), Reply::garbage);
  std::string out;
  append_delete(&out, "k1", 0);
  append_delete(&out, "k2", 30);
  EXPECT_EQ(out, "delete k1\r\ndelete k2 30\r\n");
}

}  // namespace
}  // namespace cachet::invalidate
