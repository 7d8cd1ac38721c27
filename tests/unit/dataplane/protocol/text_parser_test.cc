// Text parser: every request form, each fed split at every byte boundary (a prefix must ask for
// more, the whole must parse the same), and the bad-input cases memcached 1.6.18 answers.
#include "dataplane/protocol/text_parser.hh"

#include <gtest/gtest.h>

#include <deque>
#include <string>

namespace cachet::dataplane::text {
namespace {

using namespace std::string_literals;

constexpr size_t kLimit = 1000;  // value_max for every key in these tests

ParseResult parse_str(std::string_view in) {
  return parse(in, [](size_t) { return kLimit; });
}

// Requests point into their input: keep every input of a test alive until the process ends.
const std::string& keep(std::string s) {
  static std::deque<std::string> inputs;
  return inputs.emplace_back(std::move(s));
}

// Parses `in` whole and checks that every proper prefix asks for more input.
ParseResult parse_split(const std::string& in_) {
  const std::string& in = keep(in_);
  for (size_t k = 0; k < in.size(); ++k) {
    ParseResult p = parse_str(std::string_view(in).substr(0, k));
    EXPECT_EQ(p.status, Status::need_more)
        << "prefix " << k << " of " << testing::PrintToString(in);
    EXPECT_EQ(p.consumed, 0u);
  }
  ParseResult r = parse_str(in);
  EXPECT_EQ(r.status, Status::ready) << testing::PrintToString(in);
  EXPECT_EQ(r.consumed, in.size()) << testing::PrintToString(in);
  // Bytes after the request change nothing.
  ParseResult more = parse_str(keep(in + "get x\r\n"));
  EXPECT_EQ(more.status, Status::ready);
  EXPECT_EQ(more.consumed, r.consumed);
  EXPECT_EQ(more.req.cmd, r.req.cmd);
  EXPECT_EQ(more.req.data, r.req.data);
  return r;
}

TEST(TextParser, Retrieval) {
  auto r = parse_split("get foo\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::get);
  EXPECT_EQ(r.req.keys, " foo");
  EXPECT_TRUE(r.req.error.empty());

  r = parse_split("gets a  b c\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::gets);
  EXPECT_EQ(r.req.keys, " a  b c");

  r = parse_split("gat 100 a b\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::gat);
  EXPECT_EQ(r.req.exptime, 100);
  EXPECT_EQ(r.req.keys, " a b");

  r = parse_split("gats -1 a\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::gats);
  EXPECT_EQ(r.req.exptime, -1);

  r = parse_split("gat 0\r\n");  // memcached answers END: no keys
  EXPECT_EQ(r.req.cmd, Cmd::gat);
  EXPECT_EQ(r.req.keys, "");

  r = parse_split("bget k\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::get);

  r = parse_split("get foo\n");  // a bare newline ends a line too
  EXPECT_EQ(r.req.keys, " foo");
  r = parse_split("get foo   \r\n");
  EXPECT_EQ(r.req.keys, " foo   ");
}

TEST(TextParser, ManyKeysAreAllKept) {
  std::string line = "get";
  for (int i = 0; i < 100; ++i) line += " k" + std::to_string(i);
  std::string in = line + "\r\n";
  auto r = parse_str(in);
  ASSERT_EQ(r.status, Status::ready);
  EXPECT_EQ(r.req.keys, line.substr(3));
}

TEST(TextParser, Storage) {
  auto r = parse_split("set foo 5 10 3\r\nbar\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::set);
  EXPECT_EQ(r.req.key, "foo");
  EXPECT_EQ(r.req.flags, 5u);
  EXPECT_EQ(r.req.exptime, 10);
  EXPECT_EQ(r.req.data, "bar");
  EXPECT_FALSE(r.req.noreply);
  EXPECT_FALSE(r.req.bad_chunk);
  EXPECT_FALSE(r.req.too_large);

  r = parse_split("set foo 0 0 3 noreply\r\nbar\r\n");
  EXPECT_TRUE(r.req.noreply);
  // A 6th token other than noreply is ignored.
  r = parse_split("set foo 0 0 3 whatever\r\nbar\r\n");
  EXPECT_FALSE(r.req.noreply);
  EXPECT_TRUE(r.req.error.empty());

  EXPECT_EQ(parse_split("add k 0 0 1\r\nx\r\n").req.cmd, Cmd::add);
  EXPECT_EQ(parse_split("replace k 0 0 1\r\nx\r\n").req.cmd, Cmd::replace);
  EXPECT_EQ(parse_split("append k 0 0 1\r\nx\r\n").req.cmd, Cmd::append);
  EXPECT_EQ(parse_split("prepend k 0 0 1\r\nx\r\n").req.cmd, Cmd::prepend);

  r = parse_split("cas k 1 2 3 99\r\nabc\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::cas);
  EXPECT_EQ(r.req.number, 99u);
  r = parse_split("cas k 1 2 3 99 noreply\r\nabc\r\n");
  EXPECT_TRUE(r.req.noreply);

  r = parse_split("set foo 0 0 0\r\n\r\n");  // empty value
  EXPECT_EQ(r.req.data, "");
  r = parse_split("set foo 0 0 3\r\nb\nr\r\n");  // the block is raw bytes
  EXPECT_EQ(r.req.data, "b\nr");
  r = parse_split("set foo 0 0 3\nbar\r\n");
  EXPECT_EQ(r.req.data, "bar");
}

TEST(TextParser, StorageWaitsForItsBlock) {
  auto r = parse_str("set foo 0 0 10\r\nabc");
  EXPECT_EQ(r.status, Status::need_more);
  EXPECT_EQ(r.need, 16u + 12u);
}

TEST(TextParser, BadDataChunk) {
  // memcached reads exactly <bytes>+2 and then parses what follows as commands.
  auto r = parse_str("set foo 0 0 3\r\nbarx\r\n");
  ASSERT_EQ(r.status, Status::ready);
  EXPECT_TRUE(r.req.bad_chunk);
  EXPECT_EQ(r.consumed, 15u + 5u);
  // A length past 2^32 wraps to 0 as memcached stores it in an int: "ba" is the bad block.
  r = parse_str("set foo 0 0 4294967296\r\nbar\r\n");
  ASSERT_EQ(r.status, Status::ready);
  EXPECT_TRUE(r.req.bad_chunk);
  EXPECT_EQ(r.consumed, 24u + 2u);
}

TEST(TextParser, TooLargeIsReadyBeforeItsBlock) {
  auto r = parse_str("set foo 0 0 1001 noreply\r\n");
  ASSERT_EQ(r.status, Status::ready);
  EXPECT_TRUE(r.req.too_large);
  EXPECT_TRUE(r.req.noreply);
  EXPECT_EQ(r.consumed, 26u);
  EXPECT_EQ(r.swallow, 1003u);
  r = parse_str("set foo 0 0 1000\r\n");
  EXPECT_EQ(r.status, Status::need_more);
  // The largest length memcached accepts at all (INT_MAX - 2) is too large, not malformed.
  r = parse_str("append foo 0 0 2147483645\r\n");
  EXPECT_TRUE(r.req.too_large);
  EXPECT_EQ(r.swallow, 2147483647u);
}

TEST(TextParser, OtherCommands) {
  auto r = parse_split("incr n 5\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::incr);
  EXPECT_EQ(r.req.key, "n");
  EXPECT_EQ(r.req.number, 5u);
  r = parse_split("decr n 18446744073709551615 noreply\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::decr);
  EXPECT_EQ(r.req.number, UINT64_MAX);
  EXPECT_TRUE(r.req.noreply);

  r = parse_split("touch k -1\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::touch);
  EXPECT_EQ(r.req.exptime, -1);

  for (std::string s : {"delete k\r\n"s, "delete k 0\r\n"s, "delete k noreply\r\n"s,
                        "delete k 0 noreply\r\n"s, "delete k 30\r\n"s,
                        "delete k 18446744073709551615 noreply\r\n"s}) {
    r = parse_split(s);
    EXPECT_EQ(r.req.cmd, Cmd::del) << s;
    EXPECT_EQ(r.req.key, "k");
    EXPECT_TRUE(r.req.error.empty()) << s;
    EXPECT_EQ(r.req.noreply, s.find("noreply") != std::string::npos);
    // The hold-off in seconds (0: none); the executor clamps it.
    EXPECT_EQ(r.req.number, s.find(" 30") != std::string::npos ? 30u
                            : s.find(" 1844") != std::string::npos ? UINT64_MAX : 0u);
  }

  r = parse_split("flush_all\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::flush_all);
  EXPECT_EQ(r.req.exptime, 0);
  r = parse_split("flush_all 30 noreply\r\n");
  EXPECT_EQ(r.req.exptime, 30);
  EXPECT_TRUE(r.req.noreply);
  r = parse_split("flush_all noreply\r\n");
  EXPECT_TRUE(r.req.noreply);
  EXPECT_TRUE(r.req.error.empty());

  EXPECT_EQ(parse_split("version\r\n").req.cmd, Cmd::version);
  EXPECT_EQ(parse_split("version extra\r\n").req.cmd, Cmd::version);
  EXPECT_EQ(parse_split("quit\r\n").req.cmd, Cmd::quit);
  EXPECT_EQ(parse_split("mn\r\n").req.cmd, Cmd::mn);
  EXPECT_EQ(parse_split("shutdown\r\n").req.cmd, Cmd::shutdown);
  r = parse_split("verbosity 5 noreply\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::verbosity);
  EXPECT_EQ(r.req.number, 5u);
  EXPECT_TRUE(r.req.noreply);

  r = parse_split("stats\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::stats);
  EXPECT_EQ(r.req.nargs, 0);
  r = parse_split("stats  cachedump 1 2 3\r\n");
  EXPECT_EQ(r.req.nargs, 4);
  EXPECT_EQ(r.req.args[0], "cachedump");
  EXPECT_EQ(r.req.args[2], "2");
}

// A line that parses to an error reply, consuming the line only.
void expect_error(const std::string& in, std::string_view error, bool noreply = false) {
  ParseResult r = parse_str(in);
  ASSERT_EQ(r.status, Status::ready) << testing::PrintToString(in);
  EXPECT_EQ(r.req.error, error) << testing::PrintToString(in);
  EXPECT_EQ(r.req.noreply, noreply) << testing::PrintToString(in);
  EXPECT_EQ(r.consumed, in.find('\n') + 1);
  EXPECT_EQ(r.swallow, 0u);
}

TEST(TextParser, ErrorLines) {
  const std::string kError = "ERROR\r\n";
  const std::string kFormat = "CLIENT_ERROR bad command line format\r\n";
  const std::string kExptime = "CLIENT_ERROR invalid exptime argument\r\n";
  for (std::string s : {"\r\n"s, "   \r\n"s, "\n"s, "x\r\n"s, "VERSION\r\n"s, "get\r\n"s,
                        "get \r\n"s, "gets\r\n"s, "gat\r\n"s, "getx k\r\n"s, "set\r\n"s,
                        "set foo 1 0\r\nx\r\n"s, "set foo 1 0 1 noreply extra\r\n"s,
                        "set\tfoo 0 0 3\r\n"s, "cas foo 0 0 1\r\n"s, "incr\r\n"s, "decr x\r\n"s,
                        "touch x\r\n"s, "incr n 1 noreply x\r\n"s, "delete\r\n"s,
                        "delete a b c d\r\n"s, "flush_all 1 2 3\r\n"s, "verbosity\r\n"s,
                        "verbosity 1 2 3\r\n"s, "mx\r\n"s, "mgg x\r\n"s,
                        "lru_crawler x HTTP/1.1\r\n"s,
                        "cache_memlimit\r\n"s, "cache_memlimit abc\r\n"s}) {
    expect_error(s, kError);
  }
  // More than 23 tokens: memcached's tokenizer stops splitting, the count is wrong.
  expect_error("set foo 0 0 1 noreply a b c d e f g h i j k l m n o p q r s t u v w\r\n", kError);

  expect_error("set foo 0 0 -1\r\n", kFormat);
  expect_error("set foo 0 0 abc\r\n", kFormat);
  expect_error("set foo 0 0 2147483646\r\n", kFormat);
  expect_error("set foo 0 0 9223372036854775807\r\n", kFormat);  // an int32 -1
  expect_error("set foo -1 0 1\r\n", kFormat);
  expect_error("set foo 18446744073709551616 0 1\r\n", kFormat);
  expect_error("set foo 1 abc 1\r\n", kFormat);
  expect_error("set foo 5 0 1junk\r\n", kFormat);
  expect_error("cas foo 0 0 1 abc\r\n", kFormat);
  expect_error("cas foo 0 0 1 -1\r\n", kFormat);
  expect_error("set " + std::string(251, 'k') + " 0 0 1\r\n", kFormat);
  expect_error("set foo 0 0 abc noreply\r\n", kFormat, true);
  expect_error("set foo 0 0 noreply\r\n", kFormat, true);
  expect_error("incr " + std::string(251, 'k') + " 1\r\n", kFormat);
  expect_error("delete " + std::string(251, 'k') + "\r\n", kFormat);
  expect_error("touch " + std::string(251, 'k') + " 1\r\n", kFormat);

  const std::string kDelta = "CLIENT_ERROR invalid numeric delta argument\r\n";
  expect_error("incr n abc\r\n", kDelta);
  expect_error("incr n -1\r\n", kDelta);
  expect_error("decr n 18446744073709551616\r\n", kDelta);
  expect_error("incr n 1.5\r\n", kDelta);
  expect_error("incr n abc noreply\r\n", kDelta, true);

  expect_error("touch n abc\r\n", kExptime);
  expect_error("touch n abc noreply\r\n", kExptime, true);
  expect_error("gat abc k\r\n", kExptime);
  expect_error("flush_all abc\r\n", kExptime);
  expect_error("flush_all noreply extra\r\n", kExptime);
  expect_error("flush_all abc noreply\r\n", kExptime, true);
  EXPECT_EQ(parse_str("flush_all abc\r\n").req.cmd, Cmd::flush_all);  // still counted

  const std::string kUsage =
      "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
  expect_error("delete d x\r\n", kUsage);
  expect_error("delete d 0 x\r\n", kUsage);
  expect_error("delete d noreply extra\r\n", kUsage);
  expect_error("delete d x noreply\r\n", kUsage, true);
  expect_error("delete d -1\r\n", kUsage);                      // negative hold-off
  expect_error("delete d +5\r\n", kUsage);
  expect_error("delete d 18446744073709551616\r\n", kUsage);    // over 2^64 - 1
  expect_error("delete d 1 2\r\n", kUsage);

  expect_error("verbosity abc\r\n", kFormat);
  expect_error("verbosity -1\r\n", kFormat);
  expect_error("verbosity noreply\r\n", kFormat, true);
}

// mcrouter's lease dialect: lease-get and metaget take exactly one key; lease-set has the
// token before the flags, refuses 0, 1 and anything not a 64-bit number, and frames its data
// block like set (split at every byte).
TEST(TextParser, LeaseDialect) {
  ParseResult r = parse_split("lease-get k\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::lease_get);
  EXPECT_EQ(r.req.key, "k");
  EXPECT_TRUE(r.req.error.empty());
  r = parse_split("metaget k\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::metaget);
  EXPECT_EQ(r.req.key, "k");
  r = parse_split("lease-set k 12345678901234567890 7 100 3 noreply\r\nabc\r\n");
  EXPECT_EQ(r.req.cmd, Cmd::lease_set);
  EXPECT_EQ(r.req.key, "k");
  EXPECT_EQ(r.req.number, 12345678901234567890u);
  EXPECT_EQ(r.req.flags, 7u);
  EXPECT_EQ(r.req.exptime, 100);
  EXPECT_EQ(r.req.data, "abc");
  EXPECT_TRUE(r.req.noreply);
  EXPECT_TRUE(r.req.error.empty());

  const std::string kFormat = "CLIENT_ERROR bad command line format\r\n";
  expect_error("lease-get\r\n", "ERROR\r\n");
  expect_error("lease-get a b\r\n", kFormat);
  expect_error("lease-get " + std::string(251, 'k') + "\r\n", kFormat);
  expect_error("metaget\r\n", "ERROR\r\n");
  expect_error("metaget a b\r\n", kFormat);
  expect_error("metaget " + std::string(251, 'k') + "\r\n", kFormat);
  for (const char* tok : {"abc", "-5", "+5", "18446744073709551616", ""}) {
    std::string line = std::string("lease-set k ") + tok + " 0 0 1\r\n";
    if (!*tok) line = "lease-set k 0 0 1\r\n";  // a token short: 6 tokens
    ParseResult e = parse_str(line + "x\r\n");
    EXPECT_FALSE(e.req.error.empty()) << line;
    EXPECT_EQ(e.consumed, line.size()) << line;  // as set: the block is not swallowed
  }
  // Tokens 0 and 1 are never issued: the block is read, then refused.
  for (const char* tok : {"0", "1"}) {
    std::string in = std::string("lease-set k ") + tok + " 0 0 1\r\nx\r\n";
    ParseResult e = parse_str(in);
    EXPECT_EQ(e.req.error, "CLIENT_ERROR invalid lease token\r\n") << tok;
    EXPECT_EQ(e.consumed, in.size());
  }
  // A byte count that disagrees with the data is a bad chunk, as for set.
  ParseResult b = parse_str("lease-set k 5 0 0 2\r\nabc\r\n");
  EXPECT_TRUE(b.req.bad_chunk);
}

TEST(TextParser, LongLinesAndJunk) {
  EXPECT_EQ(parse_str(std::string(2048, 'x')).status, Status::need_more);
  EXPECT_EQ(parse_str(std::string(2049, 'x')).status, Status::close);
  EXPECT_EQ(parse_str("set foo 0 0 1 " + std::string(3000, ' ')).status, Status::close);
  EXPECT_EQ(parse_str("gat 0 " + std::string(3000, 'k')).status, Status::close);
  EXPECT_EQ(parse_str("get " + std::string(3000, 'k')).status, Status::need_more);
  EXPECT_EQ(parse_str("gets " + std::string(3000, 'k')).status, Status::need_more);
  EXPECT_EQ(parse_str(std::string(100, ' ') + "get " + std::string(3000, 'k')).status,
            Status::need_more);
  EXPECT_EQ(parse_str(std::string(101, ' ') + "get " + std::string(3000, 'k')).status,
            Status::close);
  // With its newline present, a long line is an ordinary request.
  auto r = parse_str(keep("set foo 0 0 1 " + std::string(3000, ' ') + "\r\nx\r\n"));
  EXPECT_EQ(r.status, Status::ready);
  EXPECT_EQ(r.req.data, "x");
  // HTTP requests close the connection.
  EXPECT_EQ(parse_str("GET / HTTP/1.1\r\n").status, Status::close);
  EXPECT_EQ(parse_str("foo bar HTTP/1.0\r\n").status, Status::close);
  EXPECT_EQ(parse_str("get / HTTP/1.1\r\n").req.cmd, Cmd::get);  // a get of two keys
}

TEST(TextParser, NulEndsTheLine) {
  auto r = parse_str(keep("get foo\0bar\r\n"s));
  ASSERT_EQ(r.status, Status::ready);
  EXPECT_EQ(r.req.keys, " foo");
  EXPECT_EQ(r.consumed, 13u);
}

TEST(TextParser, CarriageReturnRules) {
  // Only one "\r" before "\n" is dropped; another stays in the last token.
  auto r = parse_str("get foo\r\r\n");
  EXPECT_EQ(r.req.keys, " foo\r");
  // A number followed by whitespace inside its token is accepted, as strtol stops there.
  r = parse_str("set foo 5 0 1\tjunk\r\nx\r\n");
  EXPECT_TRUE(r.req.error.empty());
  EXPECT_EQ(r.req.data, "x");
  r = parse_str("set foo 0 0 3\rbar\r\n");  // "3\rbar" reads as 3: the block is still to come
  EXPECT_EQ(r.status, Status::need_more);
}

TEST(TextNumbers, MemcachedRules) {
  uint32_t u = 7;
  EXPECT_TRUE(safe_strtoul("4294967295", &u));
  EXPECT_EQ(u, 4294967295u);
  EXPECT_TRUE(safe_strtoul("4294967296", &u));  // truncated, as memcached does
  EXPECT_EQ(u, 0u);
  EXPECT_TRUE(safe_strtoul("18446744073709551615", &u));
  EXPECT_EQ(u, 4294967295u);
  EXPECT_FALSE(safe_strtoul("18446744073709551616", &u));
  EXPECT_TRUE(safe_strtoul("9223372036854775808", &u));
  EXPECT_EQ(u, 0u);
  EXPECT_FALSE(safe_strtoul("-1", &u));
  EXPECT_TRUE(safe_strtoul("-18446744073709551615", &u));  // strtoul's wrap: 1
  EXPECT_EQ(u, 1u);
  EXPECT_TRUE(safe_strtoul("+5", &u));
  EXPECT_EQ(u, 5u);
  EXPECT_TRUE(safe_strtoul("\t7", &u));
  EXPECT_EQ(u, 7u);
  EXPECT_TRUE(safe_strtoul("1\tjunk", &u));
  EXPECT_FALSE(safe_strtoul("1junk", &u));
  EXPECT_FALSE(safe_strtoul("", &u));
  EXPECT_FALSE(safe_strtoul("+", &u));
  EXPECT_FALSE(safe_strtoul("abc", &u));

  int32_t i = 0;
  EXPECT_TRUE(safe_strtol("-1", &i));
  EXPECT_EQ(i, -1);
  EXPECT_TRUE(safe_strtol("4294967296", &i));
  EXPECT_EQ(i, 0);
  EXPECT_TRUE(safe_strtol("4294967297", &i));
  EXPECT_EQ(i, 1);
  EXPECT_TRUE(safe_strtol("-4294967295", &i));
  EXPECT_EQ(i, 1);
  EXPECT_TRUE(safe_strtol("9999999999", &i));
  EXPECT_EQ(i, 1410065407);
  EXPECT_TRUE(safe_strtol("9223372036854775807", &i));
  EXPECT_EQ(i, -1);
  EXPECT_FALSE(safe_strtol("9223372036854775808", &i));
  EXPECT_TRUE(safe_strtol("-9223372036854775808", &i));
  EXPECT_FALSE(safe_strtol("-9223372036854775809", &i));

  uint64_t ull = 0;
  EXPECT_TRUE(safe_strtoull("18446744073709551615", &ull));
  EXPECT_EQ(ull, UINT64_MAX);
  EXPECT_FALSE(safe_strtoull("18446744073709551616", &ull));
  EXPECT_FALSE(safe_strtoull("-1", &ull));
  EXPECT_TRUE(safe_strtoull("01", &ull));
  EXPECT_EQ(ull, 1u);
  EXPECT_FALSE(safe_strtoull("1.5", &ull));
}

TEST(TextTokenizer, CountsAsMemcached) {
  std::string_view tok[kMaxTokens];
  std::string_view rest;
  EXPECT_EQ(tokenize("", tok, &rest), 1u);
  EXPECT_EQ(tokenize("   ", tok, &rest), 1u);
  EXPECT_EQ(tokenize(" set  foo ", tok, &rest), 3u);
  EXPECT_EQ(tok[0], "set");
  EXPECT_EQ(tok[1], "foo");
  EXPECT_TRUE(rest.empty());

  std::string line;
  for (int i = 0; i < 23; ++i) {
    line += 't';
    line += std::to_string(i);
    line += ' ';
  }
  EXPECT_EQ(tokenize(line, tok, &rest), 24u);  // 23 tokens and a trailing space: no rest
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(tok[22], "t22");
  std::string longer = line + " t23  t24";
  EXPECT_EQ(tokenize(longer, tok, &rest), 24u);
  EXPECT_EQ(rest, " t23  t24");
}

}  // namespace
}  // namespace cachet::dataplane::text
