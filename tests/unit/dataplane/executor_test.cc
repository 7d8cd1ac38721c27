// Executor against a real (private) store: every command's reply bytes, as memcached 1.6.18 sends
// them for the same input (checked against the real binary), noreply, incr/decr edges, cas,
// expiry and flush_all.
#include "dataplane/executor.hh"

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "common/clock.hh"
#include "tests/unit/dataplane/helpers.hh"

namespace cachet::dataplane::testing {
namespace {

using ExecutorTest = DataplaneTest;

// The cas unique `gets` reports for key (0 when missing).
uint64_t cas_of(DataplaneTest& t, const std::string& key) {
  std::string r = t.run("gets " + key + "\r\n");
  size_t eol = r.find("\r\n");
  if (r.rfind("VALUE ", 0) != 0 || eol == std::string::npos) return 0;
  std::string head = r.substr(0, eol);
  return std::stoull(head.substr(head.rfind(' ') + 1));
}

TEST_F(ExecutorTest, SetGetGets) {
  EXPECT_EQ(run("set foo 5 0 3\r\nbar\r\nget foo\r\n"),
            "STORED\r\nVALUE foo 5 3\r\nbar\r\nEND\r\n");
  uint64_t cas = cas_of(*this, "foo");
  ASSERT_NE(cas, 0u);
  EXPECT_EQ(run("gets foo\r\n"), "VALUE foo 5 3 " + std::to_string(cas) + "\r\nbar\r\nEND\r\n");
  EXPECT_EQ(run("get nokey\r\n"), "END\r\n");
  EXPECT_EQ(run("set e 0 0 0\r\n\r\nget e\r\n"), "STORED\r\nVALUE e 0 0\r\n\r\nEND\r\n");
  EXPECT_EQ(run("set f 4294967295 0 1\r\nx\r\nget f\r\n"),
            "STORED\r\nVALUE f 4294967295 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(run("set g 4294967296 0 1\r\nx\r\nget g\r\n"),  // flags wrap like memcached's
            "STORED\r\nVALUE g 0 1\r\nx\r\nEND\r\n");
}

TEST_F(ExecutorTest, MultiGetKeepsOrderAndSkipsMisses) {
  run("set a 1 0 1\r\nA\r\nset c 3 0 2\r\nCC\r\n");
  EXPECT_EQ(run("get a b c a\r\n"),
            "VALUE a 1 1\r\nA\r\nVALUE c 3 2\r\nCC\r\nVALUE a 1 1\r\nA\r\nEND\r\n");
  std::string many = "get";
  std::string expect;
  for (int i = 0; i < 60; ++i) {
    many += i % 2 ? " a" : " zz";
    if (i % 2) expect += "VALUE a 1 1\r\nA\r\n";
  }
  EXPECT_EQ(run(many + "\r\n"), expect + "END\r\n");
  auto t = totals();
  EXPECT_EQ(t.cmd_get, 64u);
  EXPECT_EQ(t.get_hits, 33u);
  EXPECT_EQ(t.get_misses, 31u);
}

TEST_F(ExecutorTest, LongKeyInGetDropsTheWholeReply) {
  run("set foo 0 0 1\r\nx\r\n");
  const std::string k251(251, 'k');
  EXPECT_EQ(run("get foo " + k251 + "\r\nget foo\r\n"),
            "CLIENT_ERROR bad command line format\r\nVALUE foo 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(run("get " + std::string(250, 'k') + "\r\n"), "END\r\n");
}

TEST_F(ExecutorTest, StorageModes) {
  EXPECT_EQ(run("set foo 0 0 3\r\nbar\r\nappend foo 0 0 3\r\nbaz\r\nprepend foo 0 0 3\r\nqux\r\n"
                "get foo\r\n"),
            "STORED\r\nSTORED\r\nSTORED\r\nVALUE foo 0 9\r\nquxbarbaz\r\nEND\r\n");
  EXPECT_EQ(run("append nokey 0 0 3\r\nbaz\r\nprepend nokey 0 0 3\r\nqux\r\n"
                "replace nokey 0 0 1\r\nx\r\nadd foo 0 0 1\r\nx\r\n"),
            "NOT_STORED\r\nNOT_STORED\r\nNOT_STORED\r\nNOT_STORED\r\n");
  // append keeps the old flags.
  EXPECT_EQ(run("set f 7 0 3\r\nbar\r\nappend f 9 0 3\r\nbaz\r\nget f\r\n"),
            "STORED\r\nSTORED\r\nVALUE f 7 6\r\nbarbaz\r\nEND\r\n");
  EXPECT_EQ(run("replace f 2 0 1\r\nz\r\nadd n 0 0 1\r\ny\r\nget f n\r\n"),
            "STORED\r\nSTORED\r\nVALUE f 2 1\r\nz\r\nVALUE n 0 1\r\ny\r\nEND\r\n");
}

TEST_F(ExecutorTest, CasFlow) {
  run("set foo 0 0 3\r\nbar\r\n");
  uint64_t cas = cas_of(*this, "foo");
  std::string c = std::to_string(cas);
  EXPECT_EQ(run("cas foo 0 0 1 " + c + "\r\nx\r\n"), "STORED\r\n");
  EXPECT_EQ(run("cas foo 0 0 1 " + c + "\r\ny\r\n"), "EXISTS\r\n");
  EXPECT_EQ(run("cas nokey 0 0 1 1\r\nx\r\n"), "NOT_FOUND\r\n");
  EXPECT_EQ(run("get foo\r\n"), "VALUE foo 0 1\r\nx\r\nEND\r\n");
  uint64_t cas2 = cas_of(*this, "foo");
  EXPECT_NE(cas2, cas);
  EXPECT_EQ(run("cas foo 0 0 1 " + std::to_string(cas2) + " noreply\r\nz\r\nget foo\r\n"),
            "VALUE foo 0 1\r\nz\r\nEND\r\n");
  auto t = totals();
  EXPECT_EQ(t.cas_hits, 2u);
  EXPECT_EQ(t.cas_badval, 1u);
  EXPECT_EQ(t.cas_misses, 1u);
  EXPECT_EQ(t.cmd_set, 5u);
}

TEST_F(ExecutorTest, NoreplyProducesNoBytes) {
  run("set n 0 0 1\r\n5\r\nset t 0 0 1\r\nx\r\nset d 0 0 1\r\nx\r\n");
  uint64_t cas = cas_of(*this, "n");
  EXPECT_EQ(run("set a 0 0 1 noreply\r\nx\r\n"
                "add b 0 0 1 noreply\r\nx\r\n"
                "add b 0 0 1 noreply\r\nx\r\n"
                "replace a 0 0 1 noreply\r\ny\r\n"
                "append a 0 0 1 noreply\r\ny\r\n"
                "prepend a 0 0 1 noreply\r\ny\r\n"
                "cas n 0 0 1 " + std::to_string(cas) + " noreply\r\n7\r\n"
                "cas n 0 0 1 1 noreply\r\n8\r\n"
                "incr n 1 noreply\r\n"
                "decr n 1 noreply\r\n"
                "incr nokey 1 noreply\r\n"
                "incr a 1 noreply\r\n"
                "touch t 10 noreply\r\n"
                "touch nokey 10 noreply\r\n"
                "delete d noreply\r\n"
                "delete d noreply\r\n"
                "delete d 0 noreply\r\n"
                "verbosity 1 noreply\r\n"
                "flush_all 100 noreply\r\n"),
            "");
  // Errors after memcached has seen the noreply are silent too.
  EXPECT_EQ(run("set a 0 0 abc noreply\r\n"
                "incr a abc noreply\r\n"
                "touch a abc noreply\r\n"
                "delete a x noreply\r\n"
                "flush_all abc noreply\r\n"
                "set a 0 0 3 noreply\r\nbarx\r\n"),
            "ERROR\r\n");  // the "\n" after the bad chunk's 5 bytes is an empty command line
  EXPECT_EQ(run("get a n\r\n"), "VALUE a 0 3\r\nyyy\r\nVALUE n 0 1\r\n7\r\nEND\r\n");
}

TEST_F(ExecutorTest, IncrDecr) {
  EXPECT_EQ(run("set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 3\r\ndecr n 100\r\n"
                "incr n 18446744073709551615\r\nget n\r\n"),
            "STORED\r\n15\r\n12\r\n0\r\n18446744073709551615\r\n"
            "VALUE n 0 20\r\n18446744073709551615\r\nEND\r\n");
  // incr wraps at 2^64; a shorter result is padded with spaces in place.
  EXPECT_EQ(run("incr n 1\r\nget n\r\n"), "0\r\nVALUE n 0 20\r\n0                   \r\nEND\r\n");
  EXPECT_EQ(run("set n 0 0 3\r\n100\r\ndecr n 1\r\nget n\r\nincr n 1\r\nget n\r\n"),
            "STORED\r\n99\r\nVALUE n 0 3\r\n99 \r\nEND\r\n100\r\nVALUE n 0 3\r\n100\r\nEND\r\n");
  EXPECT_EQ(run("set n 0 0 2\r\n99\r\nincr n 1\r\nget n\r\n"),
            "STORED\r\n100\r\nVALUE n 0 3\r\n100\r\nEND\r\n");
  EXPECT_EQ(run("set n 0 0 3\r\n 12\r\nincr n 1\r\n"), "STORED\r\n13\r\n");
  EXPECT_EQ(run("set n 0 0 3\r\n12 \r\nincr n 1\r\n"), "STORED\r\n13\r\n");
  const std::string kNonNumeric =
      "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
  for (std::string v : {"abc", "12a", "", "-1", "18446744073709551616"}) {
    EXPECT_EQ(run("set n 0 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\nincr n 1\r\n"),
              "STORED\r\n" + kNonNumeric)
        << v;
    EXPECT_EQ(run("decr n 1\r\n"), kNonNumeric) << v;
  }
  EXPECT_EQ(run("incr nokey 1\r\ndecr nokey 1\r\n"), "NOT_FOUND\r\nNOT_FOUND\r\n");
  EXPECT_EQ(run("incr n abc\r\nincr n -1\r\nincr n 18446744073709551616\r\nincr n\r\n"
                "incr n 1 2\r\nincr n 1 noreply x\r\n"),
            "CLIENT_ERROR invalid numeric delta argument\r\n"
            "CLIENT_ERROR invalid numeric delta argument\r\n"
            "CLIENT_ERROR invalid numeric delta argument\r\nERROR\r\n" +
                kNonNumeric + "ERROR\r\n");
  auto t = totals();
  EXPECT_EQ(t.incr_hits, 7u);
  EXPECT_EQ(t.decr_hits, 3u);
  EXPECT_EQ(t.incr_misses, 1u);
  EXPECT_EQ(t.decr_misses, 1u);
}

TEST_F(ExecutorTest, DeleteTouchGat) {
  // A positive time is the paper's hold-off (see HoldOff); anything else not 0 or noreply
  // gets memcached's usage line.
  EXPECT_EQ(run("delete nokey\r\nset d 0 0 1\r\nx\r\ndelete d\r\ndelete d 0\r\ndelete d 1\r\n"
                "delete d x\r\ndelete d 0 x\r\ndelete d -1\r\ndelete d +1\r\ndelete\r\n"
                "delete a b c d\r\n"),
            "NOT_FOUND\r\nSTORED\r\nDELETED\r\nNOT_FOUND\r\nNOT_FOUND\r\n"
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
            "ERROR\r\nERROR\r\n");
  EXPECT_EQ(run("set n 0 0 1\r\nx\r\ntouch n 10\r\ntouch nokey 10\r\ntouch n abc\r\ntouch n\r\n"
                "touch n 10 x\r\ntouch n -1\r\nget n\r\n"),
            "STORED\r\nTOUCHED\r\nNOT_FOUND\r\nCLIENT_ERROR invalid exptime argument\r\n"
            "ERROR\r\nTOUCHED\r\nTOUCHED\r\nEND\r\n");
  EXPECT_EQ(run("set t 0 0 1\r\nx\r\ngat 100 t nokey\r\n"),
            "STORED\r\nVALUE t 0 1\r\nx\r\nEND\r\n");
  uint64_t cas = cas_of(*this, "t");
  EXPECT_EQ(run("gats 100 t\r\ngat abc t\r\ngat 0\r\ngat\r\n"),
            "VALUE t 0 1 " + std::to_string(cas) +
                "\r\nx\r\nEND\r\nCLIENT_ERROR invalid exptime argument\r\nEND\r\nERROR\r\n");
  // memcached returns the item of a gat that expires it, and then it is gone.
  EXPECT_EQ(run("gat -1 t\r\nget t\r\n"), "VALUE t 0 1\r\nx\r\nEND\r\nEND\r\n");
  auto t = totals();
  EXPECT_EQ(t.delete_hits, 1u);
  EXPECT_EQ(t.delete_misses, 3u);
  EXPECT_EQ(t.cmd_touch, 8u);  // 4 touch + 4 gat keys
  EXPECT_EQ(t.touch_hits, 6u);
  EXPECT_EQ(t.touch_misses, 2u);
}

TEST_F(ExecutorTest, ExpiryInThePast) {
  uint32_t now = common::now_unix();
  std::string past = std::to_string(now - 100);      // absolute, already gone
  std::string future = std::to_string(now + 1000);  // absolute, still live
  EXPECT_EQ(run("set e 0 -1 1\r\nx\r\nget e\r\n"), "STORED\r\nEND\r\n");
  EXPECT_EQ(run("set p 0 " + past + " 1\r\nx\r\nget p\r\n"), "STORED\r\nEND\r\n");
  EXPECT_EQ(run("set f 0 " + future + " 1\r\nx\r\nget f\r\n"),
            "STORED\r\nVALUE f 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(run("set r 0 1000 1\r\nx\r\nget r\r\n"), "STORED\r\nVALUE r 0 1\r\nx\r\nEND\r\n");
  // 4294967296 reads as 0 (never), 9999999999 as an absolute time in 2014.
  EXPECT_EQ(run("set w 0 4294967296 1\r\nx\r\nget w\r\n"),
            "STORED\r\nVALUE w 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(run("set v 0 9999999999 1\r\nx\r\nget v\r\n"), "STORED\r\nEND\r\n");
  EXPECT_EQ(run("touch f " + past + "\r\nget f\r\n"), "TOUCHED\r\nEND\r\n");
}

TEST_F(ExecutorTest, FlushAll) {
  run("set a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\n");
  EXPECT_EQ(run("flush_all 100\r\nget a\r\n"), "OK\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(run("flush_all\r\nget a b\r\n"), "OK\r\nEND\r\n");
  EXPECT_EQ(run("set a 0 0 1\r\nz\r\nget a\r\n"), "STORED\r\nVALUE a 0 1\r\nz\r\nEND\r\n");
  EXPECT_EQ(run("flush_all 0\r\nflush_all noreply\r\nflush_all abc\r\nflush_all 10 x\r\n"
                "flush_all 1 2 3\r\nflush_all -1\r\nget a\r\n"),
            "OK\r\nCLIENT_ERROR invalid exptime argument\r\nOK\r\nERROR\r\nOK\r\nEND\r\n");
  EXPECT_EQ(totals().cmd_flush, 7u);  // every flush_all that got past the token count
}

TEST_F(ExecutorTest, TooLargeSwallowsAndSetDropsTheOldValue) {
  size_t max = exec->value_max(3);
  ASSERT_GT(max, 1000u);
  std::string big(max + 1, 'x');
  std::string n = std::to_string(big.size());
  EXPECT_EQ(run("set foo 0 0 3\r\nbar\r\nset foo 0 0 " + n + "\r\n" + big + "\r\nget foo\r\n"),
            "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n");
  EXPECT_EQ(run("set foo 0 0 3\r\nbar\r\nadd foo 0 0 " + n + "\r\n" + big + "\r\nget foo\r\n"),
            "STORED\r\nSERVER_ERROR object too large for cache\r\nVALUE foo 0 3\r\nbar\r\nEND\r\n");
  EXPECT_EQ(run("set foo 0 0 " + n + " noreply\r\n" + big + "\r\nget foo\r\n"), "END\r\n");
  // The largest value that fits is stored.
  std::string fits(max, 'y');
  EXPECT_EQ(run("set foo 0 0 " + std::to_string(max) + "\r\n" + fits + "\r\nget foo\r\n"),
            "STORED\r\nVALUE foo 0 " + std::to_string(max) + "\r\n" + fits + "\r\nEND\r\n");
  EXPECT_EQ(totals().store_too_large, 3u);
}

TEST_F(ExecutorTest, BadDataChunkAndBadLines) {
  run("set foo 0 0 3\r\nbar\r\n");
  EXPECT_EQ(run("set foo 0 0 3\r\nbarx\r\nget foo\r\n"),
            "CLIENT_ERROR bad data chunk\r\nERROR\r\nVALUE foo 0 3\r\nbar\r\nEND\r\n");
  EXPECT_EQ(run("set foo 0 0 3\r\nbarxy\r\nget foo\r\n"),
            "CLIENT_ERROR bad data chunk\r\nERROR\r\nVALUE foo 0 3\r\nbar\r\nEND\r\n");
  EXPECT_EQ(run("set foo 0 0 -1\r\nbar\r\n"), "CLIENT_ERROR bad command line format\r\nERROR\r\n");
  EXPECT_EQ(run("set foo 0 0 4294967296\r\nbar\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
  EXPECT_EQ(run("set " + std::string(251, 'k') + " 0 0 1\r\nx\r\nversion\r\n"),
            "CLIENT_ERROR bad command line format\r\nERROR\r\nVERSION 1.6.18-cachet-0.1.0\r\n");
  EXPECT_EQ(run("set foo 1 0\r\nx\r\n"), "ERROR\r\nERROR\r\n");
  EXPECT_EQ(run("\r\nx\r\nmg nokey v\r\nVERSION\r\n"), "ERROR\r\nERROR\r\nEN\r\nERROR\r\n");
  EXPECT_EQ(totals().cmd_set, 4u);  // the first set and the three bad chunks
}

TEST_F(ExecutorTest, SmallCommands) {
  bool closed = false;
  EXPECT_EQ(run("version\r\nversion extra\r\n"),
            "VERSION 1.6.18-cachet-0.1.0\r\nVERSION 1.6.18-cachet-0.1.0\r\n");
  EXPECT_EQ(run("verbosity 1\r\nverbosity\r\nverbosity abc\r\nverbosity 1 2\r\n"
                "verbosity 1 2 3\r\nverbosity -1\r\n"),
            "OK\r\nERROR\r\nCLIENT_ERROR bad command line format\r\nOK\r\nERROR\r\n"
            "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(tunables->verbosity(), 1);
  EXPECT_EQ(common::log::g_level.load(), static_cast<int>(common::log::Level::info));
  EXPECT_EQ(run("verbosity 9999999999\r\n"), "OK\r\n");
  EXPECT_EQ(tunables->verbosity(), 2);  // capped at memcached's maximum
  EXPECT_EQ(common::log::g_level.load(), static_cast<int>(common::log::Level::debug));
  run("verbosity 0\r\n");
  EXPECT_EQ(common::log::g_level.load(), static_cast<int>(common::log::Level::warn));
  EXPECT_EQ(run("shutdown\r\nmn\r\n"), "ERROR: shutdown not enabled\r\nMN\r\n");
  // The arena cannot be resized: only the current limit (8 MB here) is accepted.
  EXPECT_EQ(run("cache_memlimit 8\r\ncache_memlimit 64\r\ncache_memlimit 7\r\n"
                "cache_memlimit 2000000000\r\ncache_memlimit abc\r\ncache_memlimit abc noreply\r\n"
                "cache_memlimit 7 noreply\r\n"),
            "OK\r\nMEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n"
            "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
            "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\nERROR\r\n");
  EXPECT_EQ(run("version\r\nquit\r\nversion\r\n", &closed), "VERSION 1.6.18-cachet-0.1.0\r\n");
  EXPECT_TRUE(closed);
  EXPECT_EQ(run("GET / HTTP/1.1\r\nversion\r\n", &closed), "");
  EXPECT_TRUE(closed);
}

}  // namespace
}  // namespace cachet::dataplane::testing
