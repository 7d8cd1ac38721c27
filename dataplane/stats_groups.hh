// The `stats` groups every protocol offers (text and binary alike), and `stats reset`.
#pragma once

#include <string_view>

#include "common/byte_buf.hh"

namespace cachet::dataplane {

struct ExecShared;

// Appends the `stats <group>` text ("STAT <name> <value>\r\n" lines and "END\r\n") for the
// groups every protocol offers: "" (general), "settings", "items", "slabs", "sizes". Returns
// false, appending nothing, for any other group.
bool append_stats_group(ExecShared& shared, std::string_view group, common::ByteBuf& out);

// `stats reset`: zeroes the dataplane and store counters that memcached resets.
void reset_stats(ExecShared& shared);

}  // namespace cachet::dataplane
