// The shared stats groups (see stats_groups.hh): the dataplane's, the store's and the
// drivers' figures gathered into memcached's replies.
#include "dataplane/stats_groups.hh"

#include <fmt/format.h>

#include "common/clock.hh"
#include "dataplane/executor.hh"
#include "dataplane/stats_report.hh"

namespace cachet::dataplane {

bool append_stats_group(ExecShared& shared, std::string_view group, common::ByteBuf& out) {
  store::Store& st = shared.store;
  if (group.empty()) {
    GeneralStats g;
    g.now = common::now_unix();
    g.started = shared.started;
    g.counters = shared.board.totals();
    // Every driver's counters, summed (DPDK's UDP and the kernel path's TCP beside it), and
    // each one's own lines, with the dataplane's hits and misses beside a driver's per-worker
    // lines when it prints them.
    for (const ExecShared::DriverSlot& slot : shared.drivers) {
      const drivers::Driver* d = slot.driver.load(std::memory_order_acquire);
      if (!d) continue;
      const unsigned base = slot.base.load(std::memory_order_relaxed);
      g.net += d->stats();
      d->extra_stats(g.extra);
      for (unsigned i = 0; i < d->workers() && base + i < shared.board.workers(); ++i) {
        const std::string prefix = d->worker_stats_prefix(i);
        if (prefix.empty()) break;
        const WorkerStats& w = shared.board.worker(base + i);
        g.extra.emplace_back(prefix + "get_hits", w.get_hits.get());
        g.extra.emplace_back(prefix + "get_misses", w.get_misses.get());
      }
    }
    if (const maintenance::Engine* e = shared.maintenance.load(std::memory_order_acquire))
      e->extra_stats(g.extra);
    g.store = st.stats();
    append_general_stats(out, g, shared.settings);
  } else if (group == "settings") {
    append_settings_stats(out, shared.settings, shared.tunables.values());
  } else if (group == "items") {
    append_item_stats(out, st.class_stats());
  } else if (group == "slabs") {
    append_slab_stats(out, st.class_stats(), st.stats().total_malloced);
  } else if (group == "sizes") {
    out.append("STAT sizes_status disabled\r\nEND\r\n");
  } else {
    return false;
  }
  return true;
}

void reset_stats(ExecShared& shared) {
  shared.board.reset();
  shared.store.reset_stats();
}

}  // namespace cachet::dataplane
