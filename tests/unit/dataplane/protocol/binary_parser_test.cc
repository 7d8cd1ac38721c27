// Binary protocol parser: every opcode's fields and length checks as memcached 1.6.18's
// dispatch_bin_command makes them, every request split at every byte, and bad input (wrong
// magic, short bodies, long keys, oversized headers, too-large values swallowed unread).
#include "dataplane/protocol/binary_parser.hh"

#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "tests/unit/dataplane/binary_helpers.hh"

namespace cachet::dataplane::binary {
namespace {

using testing::be32;
using testing::delta_extras;
using testing::Req;
using testing::req;
using testing::set_extras;

constexpr size_t kValueMax = 1000;
ParseResult parse_str(std::string_view in) {
  auto value_max = [](size_t) { return kValueMax; };
  return parse(in, value_max);
}

// Every proper prefix needs more; the whole input is ready and spans all of it.
// The request's views point into its input: the inputs parse_split is given are kept here.
std::deque<std::string> inputs;

ParseResult parse_split(const std::string& input) {
  const std::string& in = inputs.emplace_back(input);
  for (size_t k = 0; k < in.size(); ++k) {
    ParseResult r = parse_str(std::string_view(in).substr(0, k));
    EXPECT_EQ(r.status, ParseStatus::need_more) << "prefix " << k << " of " << in.size();
    EXPECT_GT(r.need, k);
    if (r.status != ParseStatus::need_more) break;
  }
  ParseResult r = parse_str(in);
  EXPECT_EQ(r.status, ParseStatus::ready);
  EXPECT_EQ(r.consumed, in.size());
  return r;
}

TEST(BinaryParser, HeaderFields) {
  ParseResult r = parse_split(req(0x00, "foo", {}, {}, 0x0102030405060708ull, 0xdeadbeef));
  EXPECT_EQ(r.req.cmd, Cmd::get);
  EXPECT_EQ(r.req.opcode, 0x00);
  EXPECT_EQ(r.req.key, "foo");
  EXPECT_EQ(r.req.cas, 0x0102030405060708ull);
  EXPECT_FALSE(r.req.quiet);
  EXPECT_FALSE(r.req.with_key);
  EXPECT_TRUE(r.req.with_value);
  // The opaque is echoed byte for byte: kept as it lies in memory.
  const char* raw = reinterpret_cast<const char*>(&r.req.opaque);
  EXPECT_EQ(std::string(raw, 4), be32(0xdeadbeef));
  // Datatype and vbucket are ignored, as memcached does.
  Req q{0x0a};
  std::string b = q.bytes();
  b[5] = 7;
  b[7] = 9;
  EXPECT_EQ(parse_split(b).req.cmd, Cmd::noop);
}

TEST(BinaryParser, GetFamily) {
  struct {
    uint8_t op;
    bool quiet, with_key;
  } cases[] = {{0x00, false, false}, {0x09, true, false}, {0x0c, false, true}, {0x0d, true, true}};
  for (auto c : cases) {
    ParseResult r = parse_split(req(c.op, "k"));
    EXPECT_EQ(r.req.cmd, Cmd::get) << int(c.op);
    EXPECT_EQ(r.req.quiet, c.quiet);
    EXPECT_EQ(r.req.with_key, c.with_key);
    EXPECT_EQ(r.req.opcode, c.op);
  }
  EXPECT_EQ(parse_str(req(0x00, "k", "1234")).req.cmd, Cmd::invalid);   // extras
  EXPECT_EQ(parse_str(req(0x00)).req.cmd, Cmd::invalid);                // no key
  EXPECT_EQ(parse_str(req(0x00, "k", {}, "v")).req.cmd, Cmd::invalid);  // a value
}

TEST(BinaryParser, TouchFamily) {
  for (uint8_t op : {0x1c, 0x1d, 0x1e, 0x23, 0x24}) {
    ParseResult r = parse_split(req(op, "k", be32(300)));
    EXPECT_EQ(r.req.cmd, Cmd::touch);
    EXPECT_EQ(r.req.exptime, 300u);
    EXPECT_EQ(r.req.quiet, op == 0x1e || op == 0x24);
    EXPECT_EQ(r.req.with_key, op == 0x23 || op == 0x24);
    EXPECT_EQ(r.req.with_value, op != 0x1c);
  }
  EXPECT_EQ(parse_str(req(0x1c, "k")).req.cmd, Cmd::invalid);
  EXPECT_EQ(parse_str(req(0x1d, "", be32(1))).req.cmd, Cmd::invalid);
  // The body length is not checked: what it claims past the key is the next request.
  Req q{0x1c, "k", be32(0)};
  q.bodylen = 5 + 24;
  ParseResult r = parse_str(q.bytes());
  EXPECT_EQ(r.req.cmd, Cmd::touch);
  EXPECT_EQ(r.consumed, 24u + 5u);
}

TEST(BinaryParser, Storage) {
  ParseResult r = parse_split(req(0x01, "key", set_extras(0xfffffffe, 100), "value", 77));
  EXPECT_EQ(r.req.cmd, Cmd::update);
  EXPECT_EQ(r.req.base, Opcode::set);
  EXPECT_EQ(r.req.flags, 0xfffffffeu);
  EXPECT_EQ(r.req.exptime, 100u);
  EXPECT_EQ(r.req.value, "value");
  EXPECT_EQ(r.req.cas, 77u);
  EXPECT_FALSE(r.req.too_large);
  EXPECT_EQ(parse_split(req(0x12, "k", set_extras(0, 0), "")).req.base, Opcode::add);
  EXPECT_TRUE(parse_split(req(0x13, "k", set_extras(0, 0), "v")).req.quiet);
  r = parse_split(req(0x19, "k", {}, "tail"));
  EXPECT_EQ(r.req.base, Opcode::append);
  EXPECT_TRUE(r.req.quiet);
  EXPECT_EQ(r.req.value, "tail");
  EXPECT_EQ(parse_split(req(0x0f, "k", {}, "")).req.base, Opcode::prepend);
  // Wrong extras, no key.
  EXPECT_EQ(parse_str(req(0x01, "k", be32(0), "v")).req.cmd, Cmd::invalid);
  EXPECT_EQ(parse_str(req(0x01, "", set_extras(0, 0), "v")).req.cmd, Cmd::invalid);
  EXPECT_EQ(parse_str(req(0x0e, "k", be32(0), "v")).req.cmd, Cmd::invalid);
  EXPECT_EQ(parse_str(req(0x0e, "", {}, "v")).req.cmd, Cmd::invalid);
}

TEST(BinaryParser, TooLargeIsReadyBeforeItsValue) {
  Req q{0x01, "k", set_extras(0, 0)};
  q.bodylen = 9 + kValueMax + 1;
  ParseResult r = parse_str(q.bytes());  // the value never arrives
  ASSERT_EQ(r.status, ParseStatus::ready);
  EXPECT_TRUE(r.req.too_large);
  EXPECT_EQ(r.consumed, 24u + 9u);
  EXPECT_EQ(r.swallow, kValueMax + 1);
  // A body length memcached reads as negative is too large as well, never an underflow.
  q.bodylen = 0xfffffff0u;
  r = parse_str(q.bytes());
  EXPECT_TRUE(r.req.too_large);
  EXPECT_EQ(r.swallow, 0xfffffff0u - 9);
  // Exactly the limit is read whole.
  q.bodylen = 9 + kValueMax;
  r = parse_str(q.bytes());
  EXPECT_EQ(r.status, ParseStatus::need_more);
  EXPECT_EQ(r.need, 24u + 9u + kValueMax);
}

TEST(BinaryParser, Arithmetic) {
  ParseResult r = parse_split(req(0x05, "n", delta_extras(5, 10, 0xffffffff)));
  EXPECT_EQ(r.req.cmd, Cmd::delta);
  EXPECT_EQ(r.req.base, Opcode::increment);
  EXPECT_EQ(r.req.delta, 5u);
  EXPECT_EQ(r.req.initial, 10u);
  EXPECT_EQ(r.req.exptime, kNoCreate);
  r = parse_split(req(0x16, "n", delta_extras(UINT64_MAX, 1, 2)));
  EXPECT_EQ(r.req.base, Opcode::decrement);
  EXPECT_TRUE(r.req.quiet);
  EXPECT_EQ(r.req.delta, UINT64_MAX);
  EXPECT_EQ(parse_str(req(0x05, "n", std::string(8, 'x'))).req.cmd, Cmd::invalid);
  EXPECT_EQ(parse_str(req(0x05, "", delta_extras(1, 1, 1))).req.cmd, Cmd::invalid);
  EXPECT_EQ(parse_str(req(0x05, "n", delta_extras(1, 1, 1), "v")).req.cmd, Cmd::invalid);
}

TEST(BinaryParser, KeyOnlyAndEmptyCommands) {
  EXPECT_EQ(parse_split(req(0x04, "k")).req.cmd, Cmd::del);
  EXPECT_TRUE(parse_split(req(0x14, "k")).req.quiet);
  EXPECT_EQ(parse_str(req(0x04, "k", {}, "v")).req.cmd, Cmd::invalid);
  EXPECT_EQ(parse_str(req(0x04)).req.cmd, Cmd::invalid);
  for (uint8_t op : {0x07, 0x0a, 0x0b, 0x17}) {
    EXPECT_NE(parse_split(req(op)).req.cmd, Cmd::invalid) << int(op);
    EXPECT_EQ(parse_str(req(op, "k")).req.cmd, Cmd::invalid) << int(op);
    EXPECT_EQ(parse_str(req(op, {}, "1234")).req.cmd, Cmd::invalid) << int(op);
  }
  EXPECT_EQ(parse_split(req(0x07)).req.cmd, Cmd::quit);
  EXPECT_TRUE(parse_split(req(0x17)).req.quiet);
  ParseResult r = parse_split(req(0x08));
  EXPECT_EQ(r.req.cmd, Cmd::flush);
  EXPECT_EQ(r.req.exptime, 0u);
  r = parse_split(req(0x18, {}, be32(60)));
  EXPECT_TRUE(r.req.quiet);
  EXPECT_EQ(r.req.exptime, 60u);
  EXPECT_EQ(parse_str(req(0x08, {}, "12")).req.cmd, Cmd::invalid);
  EXPECT_EQ(parse_str(req(0x08, "k")).req.cmd, Cmd::invalid);
}

TEST(BinaryParser, Stat) {
  EXPECT_EQ(parse_split(req(0x10)).req.cmd, Cmd::stat);
  ParseResult r = parse_split(req(0x10, "items"));
  EXPECT_EQ(r.req.key, "items");
  EXPECT_EQ(parse_str(req(0x10, {}, "1234")).req.cmd, Cmd::invalid);
  // memcached consumes the key only: extra body bytes are parsed as the next request.
  r = parse_str(req(0x10, "items", {}, "zz"));
  EXPECT_EQ(r.req.cmd, Cmd::stat);
  EXPECT_EQ(r.consumed, 24u + 5u);
}

TEST(BinaryParser, UnknownOpcodesSwallowTheirBodyLikeMemcached) {
  ParseResult r = parse_split(req(0x50));
  EXPECT_EQ(r.req.cmd, Cmd::unknown);
  EXPECT_EQ(r.swallow, 0u);
  // memcached swallows the whole body length after the extras and key: extlen + keylen bytes
  // of what follows go with it.
  r = parse_str(req(0x1b, {}, be32(1)));  // VERBOSITY: not dispatched by memcached 1.6.18
  EXPECT_EQ(r.req.cmd, Cmd::unknown);
  EXPECT_EQ(r.consumed, 28u);
  EXPECT_EQ(r.swallow, 4u);
  r = parse_str(req(0x50, "abc", {}, "defg"));
  EXPECT_EQ(r.consumed, 27u);
  EXPECT_EQ(r.swallow, 7u);
  // SASL is off: "Unknown command", swallowing exactly the data after the mechanism.
  EXPECT_EQ(parse_split(req(0x20)).req.cmd, Cmd::unknown);
  EXPECT_EQ(parse_str(req(0x20, "ab")).req.cmd, Cmd::invalid);
  r = parse_str(req(0x21, "PLAIN", {}, "secret"));
  EXPECT_EQ(r.req.cmd, Cmd::unknown);
  EXPECT_EQ(r.consumed, 29u);
  EXPECT_EQ(r.swallow, 6u);
  EXPECT_EQ(parse_str(req(0x22, "PLAIN", {}, "x")).swallow, 1u);
  EXPECT_EQ(parse_str(req(0x21, {}, {}, "x")).req.cmd, Cmd::invalid);
}

TEST(BinaryParser, BadInput) {
  // Wrong magic: close without a reply, as soon as the header is there.
  Req q{0x0a};
  q.magic = 0x81;
  EXPECT_EQ(parse_str(q.bytes()).status, ParseStatus::close);
  EXPECT_EQ(parse_str("get foo\r\nxxxxxxxxxxxxxxxxxxxxxxx").status, ParseStatus::close);
  EXPECT_EQ(parse_str("get foo\r\n").status, ParseStatus::need_more);
  // Body shorter than key, or than extras + key: "Unknown command", then close.
  Req s{0x00, "foo"};
  s.bodylen = 2;
  ParseResult r = parse_str(s.bytes());
  EXPECT_EQ(r.req.cmd, Cmd::bad_body);
  Req t{0x01, "foo", set_extras(0, 0)};
  t.bodylen = 10;
  EXPECT_EQ(parse_str(t.bytes()).req.cmd, Cmd::bad_body);
  // Keys longer than 250 bytes: "Invalid arguments", then close.
  EXPECT_EQ(parse_split(req(0x00, std::string(250, 'k'))).req.cmd, Cmd::get);
  EXPECT_EQ(parse_str(req(0x00, std::string(251, 'k'))).req.cmd, Cmd::invalid);
  EXPECT_EQ(parse_str(req(0x01, std::string(251, 'k'), set_extras(0, 0), "v")).req.cmd,
            Cmd::invalid);
  // memcached waits for the key bytes before any of these checks.
  Req u{0x00};
  u.keylen = 1000;
  u.bodylen = 10;
  r = parse_str(u.bytes());
  EXPECT_EQ(r.status, ParseStatus::need_more);
  EXPECT_EQ(r.need, 1024u);
  // Header, extras and key that cannot fit memcached's 16 KB read buffer: closed once it is full.
  std::string big = req(0x00, std::string(20000, 'k'));
  EXPECT_EQ(parse_str(std::string_view(big).substr(0, 16383)).status, ParseStatus::need_more);
  EXPECT_EQ(parse_str(std::string_view(big).substr(0, 16384)).status, ParseStatus::close);
  EXPECT_EQ(parse_str(big).status, ParseStatus::close);  // even when it all arrived at once
}

TEST(BinaryParser, StatusTexts) {
  EXPECT_EQ(status_text(Status::key_enoent), "Not found");
  EXPECT_EQ(status_text(Status::key_eexists), "Data exists for key.");
  EXPECT_EQ(status_text(Status::e2big), "Too large.");
  EXPECT_EQ(status_text(Status::einval), "Invalid arguments");
  EXPECT_EQ(status_text(Status::not_stored), "Not stored.");
  EXPECT_EQ(status_text(Status::delta_badval), "Non-numeric server-side value for incr or decr");
  EXPECT_EQ(status_text(Status::unknown_command), "Unknown command");
  EXPECT_EQ(status_text(Status::enomem), "Out of memory");
}

}  // namespace
}  // namespace cachet::dataplane::binary
