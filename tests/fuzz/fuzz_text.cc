// Fuzz target: the text protocol, classic and meta commands (fuzz_text and fuzz_meta are this
// harness with their own seeds and dictionaries). Arbitrary bytes go to a real Server over a
// real store, cut into reads at fuzzer-chosen points. Invariants: every reply is well formed
// (tests/fuzz/replies.cc), unconsumed input stays bounded, a connection left at a request
// boundary still answers `mn`, and the store's consistency check holds afterwards.
#include "tests/fuzz/harness.hh"
#include "tests/fuzz/replies.hh"

using namespace cachet;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Target t;
  {
    fuzz::Stream s(t);
    fuzz::feed_in_reads(s, data, size);
    const std::string why = fuzz::check_text_replies(s.sent());
    FUZZ_EXPECT(why.empty(), "malformed reply: {}\nreplies: {}", why, fuzz::printable(s.sent()));
    if (s.at_boundary()) {
      const size_t before = s.sent().size();
      s.feed("mn\r\n");
      FUZZ_EXPECT(s.sent().substr(before) == "MN\r\n", "after the input, mn got '{}'",
                   fuzz::printable(s.sent().substr(before)));
    }
  }
  t.check_store();
  return 0;
}
