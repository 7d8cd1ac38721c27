// The text of `stats`, `stats settings`, `stats items` and `stats slabs`: memcached 1.6.18's names
// and order, limited to the figures that mean something for Cachet.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/byte_buf.hh"
#include "dataplane/settings.hh"
#include "dataplane/stats.hh"
#include "drivers/driver.hh"
#include "store/store.hh"

namespace cachet::dataplane {

// Everything `stats` reports, gathered by the caller.
struct GeneralStats {
  uint32_t now = 0;      // unix seconds
  uint32_t started = 0;  // unix seconds when the server started
  StatTotals counters;
  drivers::DriverStats net;
  store::StoreStats store{};
  // The driver's own counters (Driver::extra_stats), printed after memcached's lines.
  std::vector<std::pair<std::string, uint64_t>> extra;
};

// Cachet's memory figures (moves, repair, transient cache, efficiency) as STAT lines.
void append_memory_stats(common::ByteBuf& out, const store::StoreStats& st);

// Each appends "STAT <name> <value>\r\n" lines and the closing "END\r\n".
void append_general_stats(common::ByteBuf& out, const GeneralStats& g, const Settings& settings);
void append_settings_stats(common::ByteBuf& out, const Settings& settings,
                           const TunableValues& tunables);
void append_item_stats(common::ByteBuf& out, const std::vector<store::ClassStats>& classes);
void append_slab_stats(common::ByteBuf& out, const std::vector<store::ClassStats>& classes,
                       uint64_t total_malloced);

}  // namespace cachet::dataplane
