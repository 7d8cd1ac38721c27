// The key hash shared by the index and anything that partitions by key (xxh3, 64 bits).
#pragma once

#include <cstdint>
#include <string_view>

// Inlined (same algorithm and values as libxxhash's XXH3): keys are short, and the library
// call with its size dispatch cost as much as the hashing on the UDP hot path.
// AVX2 for the long-input loop (item checksums): GCC 12 warns falsely inside its own AVX-512
// intrinsics when xxHash's AVX-512 loop is inlined.
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#if defined(__AVX2__) && !defined(XXH_VECTOR)
#define XXH_VECTOR 2  // XXH_AVX2
#endif
#include <xxhash.h>

namespace cachet::common {

inline uint64_t hash_key(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

}  // namespace cachet::common
