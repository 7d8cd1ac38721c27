// The key hash and the item checksum are part of the arena layout: index tags and checksums
// written by one build are read by the next after an upgrade in place. These known answers
// (from libxxhash 0.8.1's XXH3, called through the library) pin the values whatever way
// xxHash is compiled in.
#include "common/hash.hh"

#include <gtest/gtest.h>

#include <string>

namespace cachet::common {
namespace {

TEST(Hash, KeyHashIsLibxxhashXxh3) {
  EXPECT_EQ(hash_key(""), 0x2d06800538d394c2ull);
  EXPECT_EQ(hash_key("foo"), 0xab6e5f64077e7d8aull);
  EXPECT_EQ(hash_key("key:000000000000000000000000001"), 0xb0ce0828fb834a16ull);
  EXPECT_EQ(hash_key("a-key-that-is-longer-than-sixteen-bytes-and-more-than-128-bytes-long-" +
                     std::string(88, 'x')),
            0x240cfe7cff4a1691ull);
}

TEST(Hash, LongInputsMatchTooWithAndWithoutSeed) {
  std::string big(5000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  EXPECT_EQ(XXH3_64bits(big.data(), big.size()), 0x6abe8be5abcb2760ull);
  EXPECT_EQ(XXH3_64bits_withSeed(big.data(), big.size(), 42), 0x55cdb888cfde72a1ull);
}

}  // namespace
}  // namespace cachet::common
