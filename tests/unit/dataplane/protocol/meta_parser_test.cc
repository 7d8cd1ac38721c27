// Meta parser: every meta command split at every byte through the text parser, the flag and
// value parsing of _meta_flag_preparse, memcached 1.6.18's error lines in its order (checked
// against the real binary), ms data framing and memcached's base64.
#include "dataplane/protocol/meta_parser.hh"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <string>

namespace cachet::dataplane::meta {
namespace {

using namespace std::string_literals;

constexpr size_t kLimit = 1000;  // value_max for every key in these tests

text::ParseResult parse_text(std::string_view in) {
  return text::parse(in, [](size_t key_len) { return kLimit - key_len; });
}

// Requests point into their input: keep every input alive until the process ends.
const std::string& keep(std::string s) {
  static std::deque<std::string> inputs;
  return inputs.emplace_back(std::move(s));
}

// Parses `in` whole through the text parser; every proper prefix must ask for more.
text::ParseResult parse_split(const std::string& in_) {
  const std::string& in = keep(in_);
  for (size_t k = 0; k < in.size(); ++k) {
    text::ParseResult p = parse_text(std::string_view(in).substr(0, k));
    EXPECT_EQ(p.status, text::Status::need_more) << "prefix " << k << " of " << in;
    EXPECT_EQ(p.consumed, 0u);
  }
  text::ParseResult r = parse_text(in);
  EXPECT_EQ(r.status, text::Status::ready) << in;
  EXPECT_EQ(r.consumed, in.size()) << in;
  EXPECT_EQ(r.req.cmd, text::Cmd::meta) << in;
  text::ParseResult more = parse_text(keep(in + "mn\r\n"));
  EXPECT_EQ(more.consumed, r.consumed);
  EXPECT_EQ(more.req.data, r.req.data);
  return r;
}

std::string error_of(std::string_view line) {
  Request q;
  parse(line, &q);
  return std::string(q.error);
}

TEST(MetaParser, EveryCommandSplitAtEveryByte) {
  auto r = parse_split("mg foo v k O123 T30\r\n");
  EXPECT_EQ(r.req.line, "mg foo v k O123 T30");
  r = parse_split("ms foo 5 T0 F3 c\r\nhello\r\n");
  EXPECT_EQ(r.req.line, "ms foo 5 T0 F3 c");
  EXPECT_EQ(r.req.data, "hello");
  EXPECT_FALSE(r.req.bad_chunk);
  r = parse_split("ms foo 0\r\n\r\n");
  EXPECT_EQ(r.req.data, "");
  r = parse_split("ms foo 2\r\nab\r\n");
  r = parse_split("ms foo 2 T0\nab\r\n");  // a bare newline ends the line too
  EXPECT_EQ(r.req.line, "ms foo 2 T0");
  r = parse_split("ms Zm9v 2 b\r\nab\r\n");
  EXPECT_EQ(r.req.data, "ab");
  parse_split("md foo q\r\n");
  parse_split("ma foo N0 J5 v\r\n");
  parse_split("me foo\r\n");
}

TEST(MetaParser, FlagsKeepTheirOrderAndValues) {
  Request q;
  parse("mg key s v f t c k h l O99 q u T-1 N30 R5", &q);
  ASSERT_EQ(q.error, "");
  EXPECT_EQ(q.cmd, Cmd::get);
  EXPECT_EQ(q.key(), "key");
  ASSERT_EQ(q.nflags, 14u);
  EXPECT_EQ(q.flags[0], "s");
  EXPECT_EQ(q.flags[8], "O99");
  for (char c : "svftckhlOquTNR"s) EXPECT_TRUE(q.has(c)) << c;
  EXPECT_FALSE(q.has('b'));
  EXPECT_EQ(q.ttl, -1);
  EXPECT_EQ(q.vivify_ttl, 30);
  EXPECT_EQ(q.recache_ttl, 5);
  EXPECT_EQ(q.long_opaque, kNone);

  Request s;
  parse("ms k 12 F4294967296 C77 MA I", &s);  // F wraps to 32 bits like safe_strtoul
  ASSERT_EQ(s.error, "");
  EXPECT_EQ(s.vlen, 12);
  EXPECT_EQ(s.client_flags, 0u);
  EXPECT_EQ(s.cas, 77u);
  EXPECT_EQ(s.mode, 'A');
  EXPECT_EQ(s.nflags, 4u);

  Request a;
  parse("ma k D7 J9 M- N0", &a);
  ASSERT_EQ(a.error, "");
  EXPECT_EQ(a.delta, 7u);
  EXPECT_EQ(a.initial, 9u);
  EXPECT_EQ(a.mode, '-');
  Request d;
  parse("ma k", &d);
  EXPECT_EQ(d.delta, 1u);  // incr by one by default
}

TEST(MetaParser, Base64Keys) {
  Request q;
  parse("mg Zm9vYg== b k", &q);
  ASSERT_EQ(q.error, "");
  EXPECT_TRUE(q.key_binary);
  EXPECT_EQ(q.key(), "foob");
  EXPECT_EQ(q.raw_key, "Zm9vYg==");
  parse("me Zm9v b", &(q = Request{}));
  EXPECT_EQ(q.cmd, Cmd::debug);
  EXPECT_EQ(q.key(), "foo");
  EXPECT_EQ(error_of("mg a1 b"), "CLIENT_ERROR error decoding key\r\n");
  EXPECT_EQ(error_of("md a1 b"), "CLIENT_ERROR invalid or duplicate flag\r\n");
  EXPECT_EQ(error_of("me a1 b"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(error_of("me ==== c"), "");  // me looks only for a "b" in third place
}

TEST(MetaParser, ErrorLinesInMemcachedOrder) {
  const std::string kError = "ERROR\r\n";
  const std::string kFormat = "CLIENT_ERROR bad command line format\r\n";
  const std::string kToken = "CLIENT_ERROR bad token in command line format\r\n";
  const std::string kInvalid = "CLIENT_ERROR invalid flag\r\n";
  const std::string kDup = "CLIENT_ERROR duplicate flag\r\n";
  const std::string kInvOrDup = "CLIENT_ERROR invalid or duplicate flag\r\n";
  const std::string k251(251, 'k');
  const std::string kOpaque33 = "O" + std::string(32, '1');
  for (auto [line, want] : std::vector<std::pair<std::string, std::string>>{
           {"mg", kError}, {"ms", kError}, {"md", kError}, {"ma", kError}, {"mx", kError},
           {"me", kFormat}, {"me " + k251, kFormat}, {"mg " + k251 + " v", kFormat},
           {"ms k", kFormat}, {"ms k abc", kFormat}, {"ms k -1", kFormat},
           {"ms k 2147483646", kFormat}, {"ms " + k251 + " 1", kFormat},
           {"mg k 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17",
            kInvalid},  // 20 tokens: still parsed
           {"mg k 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18",
            "CLIENT_ERROR options flags are too long\r\n"},
           {"md k 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18",
            "CLIENT_ERROR options flags too long\r\n"},
           {"ms k 1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17",
            "CLIENT_ERROR options flags too long\r\n"},
           {"mg k v v", kDup}, {"mg k v V", kInvalid}, {"mg k \x80", kDup}, {"mg k \x7f", kDup},
           {"mg k E1", kInvalid}, {"mg k x", kInvalid}, {"mg k S1", kInvalid},
           {"mg k Nabc", kToken}, {"mg k T", kToken}, {"mg k Fabc", kFormat},
           {"mg k Mxx", "CLIENT_ERROR incorrect length for M token\r\n"},
           {"mg k Nabc Mxx", "CLIENT_ERROR incorrect length for M token\r\n"},
           {"mg k Mxx Nabc", kToken},  // the last bad value names the error
           {"mg k Jx", "CLIENT_ERROR invalid numeric initial value\r\n"},
           {"mg k Jx Dx", "CLIENT_ERROR invalid numeric delta value\r\n"},
           {"mg k Nabc Z", kInvalid}, {"mg k P L I", ""},
           {"mg k " + kOpaque33, ""},  // mg meets it while replying
           {"md k Z", kInvOrDup}, {"md k Cabc", kInvOrDup}, {"md k v v", kInvOrDup},
           {"md k " + kOpaque33, "CLIENT_ERROR opaque token too long\r\n"},
           {"ma k Dabc", kInvOrDup}, {"ma k MX", "CLIENT_ERROR invalid mode for ma M token\r\n"},
           {"ma k Mxx", kInvOrDup}, {"ma k " + kOpaque33, ""},
           {"ms k 2 Z", kInvalid}, {"ms k 2 E1", kInvalid}, {"ms k 2 c c", kDup},
           {"ms k 2 Fabc", kFormat}, {"ms k 2 F-1", kFormat},
           {"ms k 2 MX", "CLIENT_ERROR invalid mode for ms M token\r\n"},
           {"ms k 2 " + kOpaque33, "CLIENT_ERROR opaque token too long\r\n"},
           {"ms k 2 " + kOpaque33 + " MX", "CLIENT_ERROR invalid mode for ms M token\r\n"},
           {"ms k 2 v f s t h l u N5 R5 P L J5 D5 I", ""}, {"mn x y", ""}}) {
    EXPECT_EQ(error_of(line), want) << line;
  }
  Request q;
  parse("mg k v O1 " + kOpaque33 + " k", &q);
  EXPECT_EQ(q.long_opaque, 2u);
}

TEST(MetaParser, SetFramesItsDataBlock) {
  // Refused after its length was read: the block is swallowed, the error comes from parse().
  auto r = parse_text(keep("ms k 3 Z\r\nabc\r\nmn\r\n"));
  EXPECT_EQ(r.status, text::Status::ready);
  EXPECT_EQ(r.consumed, 10u);
  EXPECT_EQ(r.swallow, 5u);
  EXPECT_FALSE(r.req.too_large);
  // Refused before: nothing to swallow.
  r = parse_text(keep("ms k abc\r\nabc\r\n"));
  EXPECT_EQ(r.consumed, 10u);
  EXPECT_EQ(r.swallow, 0u);
  // Too large for the key (a base64 key counts decoded).
  std::string big = "ms k " + std::to_string(kLimit) + "\r\n";
  r = parse_text(keep(big));
  EXPECT_TRUE(r.req.too_large);
  EXPECT_EQ(r.swallow, kLimit + 2);
  const std::string line = "ms Zm9v " + std::to_string(kLimit - 3) + " b\r\n";
  r = parse_text(keep(line));
  EXPECT_EQ(r.status, text::Status::need_more);  // "foo": 3 bytes, so it fits
  EXPECT_EQ(r.need, line.size() + kLimit - 3 + 2);
  // A block not ending in \r\n.
  r = parse_text(keep("ms k 2\r\nabcd\r\n"));
  EXPECT_TRUE(r.req.bad_chunk);
  EXPECT_EQ(r.consumed, 12u);
}

TEST(MetaParser, Base64AsMemcachedDecodes) {
  char out[64];
  auto dec = [&](std::string_view in) {
    size_t n = base64_decode(in, out);
    return n ? std::string(out, n) : "<fail>"s;
  };
  EXPECT_EQ(dec("Zm9v"), "foo");
  EXPECT_EQ(dec("Zm9vYg=="), "foob");
  EXPECT_EQ(dec("Zm9vYmE="), "fooba");
  EXPECT_EQ(dec("Zm!9v"), "foo");       // bytes outside the alphabet are skipped
  EXPECT_EQ(dec("ab!c="), "i\xb7"s);    // "abc=" once '!' is skipped
  EXPECT_EQ(dec("Zg==Zm9v"), "f");      // stops after the first padded block
  EXPECT_EQ(dec("Zm9"), "<fail>");      // not a multiple of four symbols
  EXPECT_EQ(dec("Zm9v="), "<fail>");
  EXPECT_EQ(dec("===="), "<fail>");     // three or more pads
  EXPECT_EQ(dec("A==="), "<fail>");
  EXPECT_EQ(dec(""), "<fail>");
  std::mt19937 rng(5);
  for (size_t n = 1; n < 40; ++n) {
    std::string raw(n, '\0');
    for (auto& c : raw) c = static_cast<char>(rng());
    char enc[64];
    size_t m = base64_encode(raw, enc);
    EXPECT_EQ(m, base64_encoded_size(n));
    EXPECT_EQ(dec(std::string_view(enc, m)), raw);
  }
  char enc[8];
  EXPECT_EQ(std::string(enc, base64_encode("hi", enc)), "aGk=");
  EXPECT_EQ(std::string(enc, base64_encode("h", enc)), "aA==");
}

}  // namespace
}  // namespace cachet::dataplane::meta
