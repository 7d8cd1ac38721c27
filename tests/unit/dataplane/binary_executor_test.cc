// Binary executor against a real (private) store: every opcode's exact response bytes and
// counters, as memcached 1.6.18 sends and counts them for the same requests (recorded from the
// real binary with a socket script; raw hex where shown is memcached's own output).
#include "dataplane/binary_executor.hh"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "dataplane/version.hh"
#include "tests/unit/dataplane/binary_helpers.hh"
#include "tests/unit/dataplane/helpers.hh"

namespace cachet::dataplane::testing {
namespace {

std::string unhex(std::string_view h) {
  std::string s;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    s += static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16));
  }
  return s;
}

constexpr uint16_t kOk = 0, kNotFound = 1, kExists = 2, kTooBig = 3, kInval = 4, kNotStored = 5,
                   kBadVal = 6, kUnknown = 0x81;

class BinaryExecutorTest : public DataplaneTest {
 public:
  void SetUp() override {
    DataplaneTest::SetUp();
    bin = std::make_unique<BinaryExecutor>(*shared, exec->rules());
  }

  // Parses and executes every request in `in`, swallowing what the parser says to swallow.
  std::string brun(std::string_view in, bool* closed = nullptr) {
    common::ByteBuf out;
    auto vmax = [this](size_t k) { return exec->value_max(k); };
    size_t pos = 0;
    bool c = false;
    while (pos < in.size()) {
      binary::ParseResult r = binary::parse(in.substr(pos), vmax);
      if (r.status != binary::ParseStatus::ready) {
        c = r.status == binary::ParseStatus::close;
        break;
      }
      pos += r.consumed;
      pos += std::min<size_t>(r.swallow, in.size() - pos);
      if (bin->execute(r.req, out) == Executor::After::close) {
        c = true;
        break;
      }
    }
    if (closed) *closed = c;
    return std::string(out.view());
  }

  // The cas a GET reports for key (0 on a miss).
  uint64_t cas_of(const std::string& key) {
    auto p = packets(brun(req(0x00, key)));
    return p.size() == 1 && p[0].status == kOk ? p[0].cas : 0;
  }

  std::unique_ptr<BinaryExecutor> bin;
};

TEST_F(BinaryExecutorTest, SetAndGetFamily) {
  std::string r = brun(req(0x01, "foo", set_extras(5, 0), "bar", 0, 0x12345678));
  auto p = packets(r);
  ASSERT_EQ(p.size(), 1u);
  const uint64_t cas = p[0].cas;
  ASSERT_NE(cas, 0u);
  EXPECT_EQ(r, res(0x01, kOk, {}, {}, {}, 0x12345678, cas));
  EXPECT_EQ(brun(req(0x00, "foo", {}, {}, 0, 7)), res(0x00, kOk, be32(5), {}, "bar", 7, cas));
  EXPECT_EQ(brun(req(0x0c, "foo", {}, {}, 0, 7)), res(0x0c, kOk, be32(5), "foo", "bar", 7, cas));
  // Misses: GET says "Not found"; GETK answers with the key and no message (memcached's bytes).
  EXPECT_EQ(brun(req(0x00, "nokey", {}, {}, 0, 7)),
            unhex("8100000000000001000000090000000700000000000000004e6f7420666f756e64"));
  EXPECT_EQ(brun(req(0x0c, "nokey", {}, {}, 0, 7)),
            unhex("810c000500000001000000050000000700000000000000006e6f6b6579"));
  // Quiet gets: hits only.
  EXPECT_EQ(brun(req(0x09, "nokey") + req(0x09, "foo") + req(0x0d, "nokey") + req(0x0d, "foo") +
                 req(0x0a)),
            res(0x09, kOk, be32(5), {}, "bar", 0, cas) +
                res(0x0d, kOk, be32(5), "foo", "bar", 0, cas) + res(0x0a, kOk));
  auto t = totals();
  EXPECT_EQ(t.cmd_set, 1u);
  EXPECT_EQ(t.cmd_get, 8u);
  EXPECT_EQ(t.get_hits, 4u);
  EXPECT_EQ(t.get_misses, 4u);
  // Flags are 32 bits; the empty value is a value.
  brun(req(0x01, "e", set_extras(0xfffffffe, 0), ""));
  EXPECT_EQ(packets(brun(req(0x00, "e")))[0].extras, be32(0xfffffffe));
  EXPECT_EQ(packets(brun(req(0x00, "e")))[0].value, "");
  // The text protocol sees what the binary one stored.
  EXPECT_EQ(run("get foo\r\n"), "VALUE foo 5 3\r\nbar\r\nEND\r\n");
}

TEST_F(BinaryExecutorTest, AddReplaceAndCas) {
  brun(req(0x01, "a", set_extras(0, 0), "1"));
  EXPECT_EQ(brun(req(0x02, "a", set_extras(0, 0), "2")),
            err(0x02, kExists, "Data exists for key."));
  EXPECT_EQ(packets(brun(req(0x02, "n", set_extras(0, 0), "2")))[0].status, kOk);
  EXPECT_EQ(brun(req(0x03, "zz", set_extras(0, 0), "3")), err(0x03, kNotFound, "Not found"));
  // Quiet forms: errors only.
  EXPECT_EQ(brun(req(0x12, "a", set_extras(0, 0), "1") + req(0x11, "a", set_extras(0, 0), "2") +
                 req(0x13, "zz", set_extras(0, 0), "3") + req(0x0a)),
            err(0x12, kExists, "Data exists for key.") + err(0x13, kNotFound, "Not found") +
                res(0x0a, kOk));
  // A cas in the header makes set, add and replace a compare-and-swap.
  uint64_t cas = cas_of("a");
  EXPECT_EQ(brun(req(0x01, "a", set_extras(0, 0), "x", cas + 1000)),
            err(0x01, kExists, "Data exists for key."));
  auto p = packets(brun(req(0x01, "a", set_extras(0, 0), "y", cas)));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].status, kOk);
  EXPECT_GT(p[0].cas, cas);
  EXPECT_EQ(brun(req(0x01, "missing", set_extras(0, 0), "y", 5)),
            err(0x01, kNotFound, "Not found"));
  EXPECT_EQ(packets(brun(req(0x02, "a", set_extras(0, 0), "z", cas_of("a"))))[0].status, kOk);
  EXPECT_EQ(brun(req(0x03, "missing", set_extras(0, 0), "z", 5)),
            err(0x03, kNotFound, "Not found"));
  auto t = totals();
  EXPECT_EQ(t.cas_badval, 1u);
  EXPECT_EQ(t.cas_hits, 2u);
  EXPECT_EQ(t.cas_misses, 2u);
}

TEST_F(BinaryExecutorTest, TooLargeSwallowsAndDropsTheOldValueOnSet) {
  const size_t limit = exec->value_max(3);
  brun(req(0x01, "big", set_extras(0, 0), "old"));
  const std::string huge(limit + 1, 'x');
  EXPECT_EQ(brun(req(0x02, "big", set_extras(0, 0), huge) + req(0x0a)),
            err(0x02, kTooBig, "Too large.") + res(0x0a, kOk));
  EXPECT_EQ(packets(brun(req(0x00, "big")))[0].value, "old");  // add keeps it
  EXPECT_EQ(brun(req(0x0e, "big", {}, huge)), err(0x0e, kTooBig, "Too large."));
  EXPECT_EQ(brun(req(0x11, "big", set_extras(0, 0), huge)), err(0x11, kTooBig, "Too large."));
  EXPECT_EQ(brun(req(0x00, "big")), err(0x00, kNotFound, "Not found"));  // set drops it
  auto t = totals();
  EXPECT_EQ(t.cmd_set, 1u);  // memcached counts none of the refusals
  EXPECT_EQ(t.store_too_large, 0u);
  // The largest value that fits is stored.
  EXPECT_EQ(packets(brun(req(0x01, "big", set_extras(0, 0), std::string(limit, 'y'))))[0].status,
            kOk);
}

TEST_F(BinaryExecutorTest, Delete) {
  brun(req(0x01, "a", set_extras(0, 0), "1"));
  const uint64_t cas = cas_of("a");
  EXPECT_EQ(brun(req(0x04, "a", {}, {}, cas + 1)), err(0x04, kExists, "Data exists for key."));
  EXPECT_EQ(brun(req(0x04, "a", {}, {}, cas)), res(0x04, kOk));
  EXPECT_EQ(brun(req(0x04, "a")), err(0x04, kNotFound, "Not found"));
  EXPECT_EQ(brun(req(0x04, "a", {}, {}, 99)), err(0x04, kNotFound, "Not found"));
  brun(req(0x01, "d", set_extras(0, 0), "1"));
  EXPECT_EQ(brun(req(0x14, "d") + req(0x14, "d") + req(0x0a)),
            err(0x14, kNotFound, "Not found") + res(0x0a, kOk));
  auto t = totals();
  EXPECT_EQ(t.delete_hits, 2u);
  EXPECT_EQ(t.delete_misses, 3u);
}

TEST_F(BinaryExecutorTest, IncrementDecrement) {
  // The response carries the new value and the item's new cas.
  auto expect_value = [this](uint8_t op, const std::string& request, uint64_t v) {
    std::string r = brun(request);
    EXPECT_EQ(r, res(op, kOk, {}, {}, be64(v), 0, cas_of("cnt"))) << "expecting " << v;
  };
  // A miss creates the item with the initial value (not counted as a miss or a set).
  expect_value(0x05, req(0x05, "cnt", delta_extras(1, 10, 0)), 10);
  EXPECT_EQ(packets(brun(req(0x00, "cnt")))[0].value, "10");
  expect_value(0x05, req(0x05, "cnt", delta_extras(1, 10, 0)), 11);
  expect_value(0x05, req(0x05, "cnt", delta_extras(5, 10, 0)), 16);
  expect_value(0x06, req(0x06, "cnt", delta_extras(100, 10, 0)), 0);
  // Expiration 0xffffffff: a miss is "Not found".
  EXPECT_EQ(brun(req(0x05, "c2", delta_extras(1, 5, 0xffffffff))),
            unhex("8105000000000001000000090000000000000000000000004e6f7420666f756e64"));
  EXPECT_EQ(brun(req(0x06, "c2", delta_extras(1, 5, 0xffffffff))),
            err(0x06, kNotFound, "Not found"));
  // Quiet: success silent, errors sent.
  EXPECT_EQ(
      brun(req(0x15, "cnt", delta_extras(1, 10, 0)) + req(0x16, "cnt", delta_extras(1, 0, 0)) +
           req(0x15, "cq", delta_extras(1, 10, 0xffffffff)) + req(0x0a)),
      err(0x15, kNotFound, "Not found") + res(0x0a, kOk));
  brun(req(0x01, "nn", set_extras(0, 0), "bar"));
  EXPECT_EQ(brun(req(0x05, "nn", delta_extras(1, 10, 0))),
            err(0x05, kBadVal, "Non-numeric server-side value for incr or decr"));
  // A cas that does not match the item's.
  EXPECT_EQ(brun(req(0x05, "cnt", delta_extras(1, 10, 0), {}, 1)),
            err(0x05, kExists, "Data exists for key."));
  expect_value(0x05, req(0x05, "cnt", delta_extras(7, 10, 0), {}, cas_of("cnt")), 7);
  auto t = totals();
  EXPECT_EQ(t.incr_hits, 4u);
  EXPECT_EQ(t.decr_hits, 2u);
  EXPECT_EQ(t.incr_misses, 2u);
  EXPECT_EQ(t.decr_misses, 1u);
  EXPECT_EQ(t.cmd_set, 1u);
}

TEST_F(BinaryExecutorTest, AppendPrepend) {
  brun(req(0x01, "ap", set_extras(3, 0), "mid"));
  auto p = packets(brun(req(0x0e, "ap", {}, "END") + req(0x0f, "ap", {}, "BEG")));
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].status, kOk);
  EXPECT_EQ(p[1].status, kOk);
  EXPECT_GT(p[1].cas, p[0].cas);
  EXPECT_EQ(brun(req(0x00, "ap")), res(0x00, kOk, be32(3), {}, "BEGmidEND", 0, p[1].cas));
  EXPECT_EQ(brun(req(0x0e, "nokey", {}, "x") + req(0x0f, "nokey", {}, "x")),
            err(0x0e, kNotStored, "Not stored.") + err(0x0f, kNotStored, "Not stored."));
  EXPECT_EQ(brun(req(0x19, "ap", {}, "1") + req(0x1a, "ap", {}, "0") + req(0x19, "nokey", {}, "x")),
            err(0x19, kNotStored, "Not stored."));
  EXPECT_EQ(packets(brun(req(0x00, "ap")))[0].value, "0BEGmidEND1");
  // With a cas: only onto the item it names.
  uint64_t cas = cas_of("ap");
  EXPECT_EQ(brun(req(0x0e, "ap", {}, "C", cas + 1)), err(0x0e, kExists, "Data exists for key."));
  p = packets(brun(req(0x0e, "ap", {}, "D", cas)));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].status, kOk);
  EXPECT_EQ(brun(req(0x0e, "nokey", {}, "C", cas)), err(0x0e, kNotStored, "Not stored."));
  EXPECT_EQ(brun(req(0x00, "ap")), res(0x00, kOk, be32(3), {}, "0BEGmidEND1D", 0, p[0].cas));
  // Growing past the item limit: "Not stored."
  brun(req(0x01, "big", set_extras(0, 0), std::string(exec->value_max(3) - 10, 'x')));
  EXPECT_EQ(brun(req(0x0e, "big", {}, std::string(11, 'y'))), err(0x0e, kNotStored, "Not stored."));
  EXPECT_EQ(totals().cmd_set, 13u);  // every append counts, as memcached
}

TEST_F(BinaryExecutorTest, TouchAndGat) {
  brun(req(0x01, "t", set_extras(7, 0), "val"));
  const uint64_t cas = cas_of("t");
  EXPECT_EQ(brun(req(0x1c, "t", be32(100), {}, 0, 9)), res(0x1c, kOk, be32(7), {}, {}, 9, cas));
  EXPECT_EQ(brun(req(0x1c, "nokey", be32(100))), err(0x1c, kNotFound, "Not found"));
  EXPECT_EQ(brun(req(0x1d, "t", be32(100)) + req(0x23, "t", be32(100)) +
                 req(0x1d, "nokey", be32(100)) + req(0x23, "nokey", be32(100))),
            res(0x1d, kOk, be32(7), {}, "val", 0, cas) +
                res(0x23, kOk, be32(7), "t", "val", 0, cas) + err(0x1d, kNotFound, "Not found") +
                res(0x23, kNotFound, {}, "nokey"));
  EXPECT_EQ(brun(req(0x1e, "t", be32(100)) + req(0x24, "t", be32(100)) +
                 req(0x1e, "nokey", be32(100)) + req(0x24, "nokey", be32(100)) + req(0x0a)),
            res(0x1e, kOk, be32(7), {}, "val", 0, cas) +
                res(0x24, kOk, be32(7), "t", "val", 0, cas) + res(0x0a, kOk));
  auto t = totals();
  EXPECT_EQ(t.cmd_touch, 10u);
  EXPECT_EQ(t.touch_hits, 5u);
  EXPECT_EQ(t.touch_misses, 5u);
  EXPECT_EQ(t.cmd_get, 1u);  // the cas_of() lookup
  // A negative-looking expiration is an absolute time far ahead, not "expired".
  brun(req(0x1c, "t", be32(0xfffffff0)));
  EXPECT_EQ(packets(brun(req(0x00, "t")))[0].status, kOk);
  // An absolute expiration in the past: gone.
  brun(req(0x1c, "t", be32(60 * 60 * 24 * 30 + 1)));
  EXPECT_EQ(packets(brun(req(0x00, "t")))[0].status, kNotFound);
}

TEST_F(BinaryExecutorTest, FlushNoopVersionQuit) {
  brun(req(0x01, "a", set_extras(0, 0), "1"));
  EXPECT_EQ(brun(req(0x08)), unhex("810800000000000000000000000000000000000000000000"));
  EXPECT_EQ(packets(brun(req(0x00, "a")))[0].status, kNotFound);
  EXPECT_EQ(brun(req(0x08, {}, be32(0)) + req(0x18) + req(0x18, {}, be32(2)) + req(0x0a)),
            res(0x08, kOk) + res(0x0a, kOk));
  EXPECT_EQ(totals().cmd_flush, 4u);
  EXPECT_EQ(brun(req(0x0a, {}, {}, {}, 0, 3)), res(0x0a, kOk, {}, {}, {}, 3));
  EXPECT_EQ(brun(req(0x0b)), res(0x0b, kOk, {}, {}, kVersion));
  bool closed = false;
  EXPECT_EQ(brun(req(0x07, {}, {}, {}, 0, 5) + req(0x0a), &closed),
            unhex("810700000000000000000000000000050000000000000000"));
  EXPECT_TRUE(closed);
  EXPECT_EQ(brun(req(0x17) + req(0x0a), &closed), "");
  EXPECT_TRUE(closed);
}

TEST_F(BinaryExecutorTest, UnknownSaslAndVerbosity) {
  const std::string unknown = "Unknown command";
  EXPECT_EQ(brun(req(0x50) + req(0x0a)), err(0x50, kUnknown, unknown) + res(0x0a, kOk));
  // SASL is off: memcached's own replies.
  EXPECT_EQ(brun(req(0x20) + req(0x0a)),
            unhex("81200000000000810000000f000000000000000000000000556e6b6e6f776e20636f6d6d616e64"
                  "810a00000000000000000000000000000000000000000000"));
  EXPECT_EQ(brun(req(0x21, "PLAIN", {}, "xxxx") + req(0x22, "PLAIN", {}, "xxxx") + req(0x0a)),
            err(0x21, kUnknown, unknown) + err(0x22, kUnknown, unknown) + res(0x0a, kOk));
  bool closed = false;
  EXPECT_EQ(brun(req(0x20, "ab") + req(0x0a), &closed), err(0x20, kInval, "Invalid arguments"));
  EXPECT_TRUE(closed);
  // VERBOSITY is not dispatched by memcached 1.6.18; its 4 body bytes are swallowed again from
  // what follows (here the NOOP's first 4 bytes), so the NOOP is lost as with memcached.
  EXPECT_EQ(brun(req(0x1b, {}, be32(1)) + req(0x0a), &closed), err(0x1b, kUnknown, unknown));
  EXPECT_FALSE(closed);
}

TEST_F(BinaryExecutorTest, MalformedRequestsCloseWithAnError) {
  struct {
    std::string in;
    std::string reply;
  } cases[] = {
      {req(0x00, "k", "1234"), err(0x00, kInval, "Invalid arguments")},
      {req(0x01, "k", be32(0), "v"), err(0x01, kInval, "Invalid arguments")},
      {req(0x0e, "k", "1234", "v"), err(0x0e, kInval, "Invalid arguments")},
      {req(0x07, "k"), err(0x07, kInval, "Invalid arguments")},
      {req(0x10, {}, "xxxx"), err(0x10, kInval, "Invalid arguments")},
      {req(0x1c, "t"), err(0x1c, kInval, "Invalid arguments")},
      {req(0x00, std::string(251, 'k')), err(0x00, kInval, "Invalid arguments")},
  };
  for (const auto& c : cases) {
    bool closed = false;
    EXPECT_EQ(brun(c.in + req(0x0a), &closed), c.reply);
    EXPECT_TRUE(closed);
  }
  Req q{0x00, "foo"};
  q.bodylen = 2;
  bool closed = false;
  EXPECT_EQ(
      brun(q.bytes() + req(0x0a), &closed),
      unhex("81000000000000810000000f000000000000000000000000556e6b6e6f776e20636f6d6d616e64"));
  EXPECT_TRUE(closed);
}

}  // namespace
}  // namespace cachet::dataplane::testing
