// The key hash shared by the index and anything that partitions by key (xxh3, 64 bits).
#pragma once

#include <cstdint>
#include <string_view>

#include <xxhash.h>

namespace cachet::common {

inline uint64_t hash_key(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

}  // namespace cachet::common
