// Counted store calls and the shared stats groups (see store_ops.hh).
#include "dataplane/store_ops.hh"

#include <fmt/format.h>

#include "common/clock.hh"
#include "dataplane/executor.hh"
#include "dataplane/stats_report.hh"

namespace cachet::dataplane {

uint32_t store_exptime(int64_t exptime) {
  return exptime == 0 ? 0 : store::Store::absolute_exptime(exptime, common::now_unix());
}

bool StoreOps::remove(std::string_view key) {
  bool hit = store_.remove(worker_, key);
  (hit ? stats_.delete_hits : stats_.delete_misses).add();
  return hit;
}

store::StoreResult StoreOps::update(store::Mode mode, std::string_view key, std::string_view value,
                                    uint32_t flags, uint32_t exptime, uint64_t cas_in,
                                    uint64_t* cas_out, bool drop_on_refusal) {
  store::StoreResult r = store_.store(worker_, mode, key, value, flags, exptime, cas_in, cas_out);
  switch (r) {
    case store::StoreResult::stored:
      stats_.cmd_set.add();
      if (mode == store::Mode::cas) stats_.cas_hits.add();
      break;
    case store::StoreResult::not_stored:
      stats_.cmd_set.add();
      break;
    case store::StoreResult::exists:
      stats_.cmd_set.add();
      stats_.cas_badval.add();
      break;
    case store::StoreResult::not_found:
      stats_.cmd_set.add();
      stats_.cas_misses.add();
      break;
    case store::StoreResult::too_large:
    case store::StoreResult::no_memory:
      if (drop_on_refusal) store_.remove(worker_, key);
      break;
  }
  return r;
}

store::DeltaResult StoreOps::delta(std::string_view key, bool incr, uint64_t by, uint64_t* value,
                                   uint64_t* cas_out, bool count_miss) {
  store::DeltaResult r = store_.delta(worker_, key, incr, by, value, cas_out);
  if (r == store::DeltaResult::ok) {
    (incr ? stats_.incr_hits : stats_.decr_hits).add();
  } else if (r == store::DeltaResult::not_found && count_miss) {
    (incr ? stats_.incr_misses : stats_.decr_misses).add();
  }
  return r;
}

void StoreOps::flush(int64_t exptime) {
  stats_.cmd_flush.add();
  uint32_t delay = 0;
  if (exptime > 0) {
    uint32_t now = common::now_unix();
    uint32_t when = store::Store::absolute_exptime(exptime, now);
    delay = when > now ? when - now : 0;
  }
  store_.flush_all(worker_, delay);
}

bool append_stats_group(ExecShared& shared, std::string_view group, common::ByteBuf& out) {
  store::Store& st = shared.store;
  if (group.empty()) {
    GeneralStats g;
    g.now = common::now_unix();
    g.started = shared.started;
    g.counters = shared.board.totals();
    if (const drivers::Driver* d = shared.driver.load(std::memory_order_acquire)) {
      g.net = d->stats();
      d->extra_stats(g.extra);
      // On the bypass path worker i is lcore i: its hits and misses beside its packet counters.
      if (shared.settings.driver == "dpdk") {
        for (unsigned i = 0; i < d->workers() && i < shared.board.workers(); ++i) {
          const WorkerStats& w = shared.board.worker(i);
          g.extra.emplace_back(fmt::format("dpdk:lcore{}:get_hits", i), w.get_hits.get());
          g.extra.emplace_back(fmt::format("dpdk:lcore{}:get_misses", i), w.get_misses.get());
        }
      }
    }
    g.store = st.stats();
    append_general_stats(out, g, shared.settings);
  } else if (group == "settings") {
    append_settings_stats(out, shared.settings);
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
