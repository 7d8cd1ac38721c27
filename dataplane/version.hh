// The version string cachetd reports (`version`, `stats`): memcached's version first, so that
// clients which parse it numerically (libmemcached) keep working, then Cachet's.
#pragma once

#include <string_view>

namespace cachet::dataplane {

inline constexpr std::string_view kVersion = "1.6.18-cachet-0.1.0";

}  // namespace cachet::dataplane
