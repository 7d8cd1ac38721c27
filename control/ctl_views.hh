// cachetctl's text views: status, stats, the config table, the slab table and one frame of
// `top`. Pure functions of the control API's replies, so they are unit tested.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "control/admin_client.hh"

namespace cachet::control {

// The "stats" array of a reply ([[name, value], ...]) as a StatList.
StatList stats_from_json(const nlohmann::json& stats);

std::string format_status(const nlohmann::json& status);
std::string format_stats(const StatList& stats);
std::string format_config(const nlohmann::json& tunables);

// One row per slab class that owns pages or holds items: chunk size, pages, chunks used/total,
// items, the fill ratio, age and evictions, from `stats slabs` and `stats items`. With the
// `stats slabs` of an earlier sample, each class's page count shows its change since (pages
// moving between classes).
std::string format_slabs(const StatList& slabs, const StatList& items,
                         const StatList* earlier_slabs = nullptr);

// cachet-invalidate's status (its control socket's reply, through cachet-control): the source
// and its position, the pipeline's counts, every pool's servers with their spools, the auditor.
std::string format_invalidate(const nlohmann::json& status);

// 1536 -> "1.5K", 3 << 20 -> "3.0M".
std::string human_bytes(double bytes);

struct TopSample {
  int64_t t_ms = 0;
  StatList stats;         // `stats`
  StatList slabs, items;  // `stats slabs`, `stats items` (the live slab view only)
};

// One `top` frame from two samples (rates over the interval between them): ops/s, gets/s,
// sets/s, hit ratio, evictions, memory reclaimed and pages moved per second, items, memory,
// connections, network, and per-worker load when the driver reports per-worker
// `<driver>:<worker>:requests` counters.
std::string format_top(const TopSample& prev, const TopSample& cur, const std::string& header);

// One frame of `cachetctl slabs --watch`: the slab table with each class's page change since the
// previous sample, and the page moves and reclaim of the interval.
std::string format_slabs_live(const TopSample& prev, const TopSample& cur,
                              const std::string& header);

}  // namespace cachet::control
