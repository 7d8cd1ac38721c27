// Fuzz target: the binary protocol. A NOOP opens the connection (so it speaks binary), then
// arbitrary bytes follow, cut into reads at fuzzer-chosen points. Invariants: every response
// is a well-formed frame (tests/fuzz/replies.cc), unconsumed input stays bounded, a connection
// left at a request boundary still answers a NOOP with its opaque, and the store's
// consistency check holds afterwards.
#include <string>

#include "tests/fuzz/harness.hh"
#include "tests/fuzz/replies.hh"

using namespace cachet;

namespace {

// A NOOP request with opaque 0xfeedface, and memcached's answer to it.
const std::string kNoop("\x80\x0a\0\0\0\0\0\0\0\0\0\0\xfe\xed\xfa\xce\0\0\0\0\0\0\0\0", 24);
const std::string kNoopReply("\x81\x0a\0\0\0\0\0\0\0\0\0\0\xfe\xed\xfa\xce\0\0\0\0\0\0\0\0", 24);

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Target t;
  {
    fuzz::Stream s(t);
    s.feed(kNoop);
    FUZZ_EXPECT(s.sent() == kNoopReply, "the opening NOOP got '{}'", fuzz::printable(s.sent()));
    fuzz::feed_in_reads(s, data, size);
    const std::string why = fuzz::check_binary_replies(s.sent());
    FUZZ_EXPECT(why.empty(), "malformed response: {}\nresponses: {}", why,
                 fuzz::printable(s.sent()));
    if (s.at_boundary()) {
      const size_t before = s.sent().size();
      s.feed(kNoop);
      FUZZ_EXPECT(s.sent().substr(before) == kNoopReply, "after the input, NOOP got '{}'",
                   fuzz::printable(s.sent().substr(before)));
    }
  }
  t.check_store();
  return 0;
}
