// The store calls every protocol executor makes (text, binary, meta), each with memcached's
// per-worker counters, so that every protocol counts alike; and the stats groups they share.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/byte_buf.hh"
#include "dataplane/stats.hh"
#include "store/store.hh"

namespace cachet::dataplane {

struct ExecShared;

// A protocol exptime (0 never, <= 30 days relative, else absolute unix time, negative already
// expired) in the absolute form the store keeps, against the current clock.
uint32_t store_exptime(int64_t exptime);

// One worker's store handle and counters. Cheap to make (three references); used only on the
// worker's thread.
class StoreOps {
 public:
  StoreOps(store::Store& s, store::Worker& w, WorkerStats& st)
      : store_(s), worker_(w), stats_(st) {}

  // A read (get/gets, GET*): counts cmd_get and get_hits or get_misses.
  bool get(std::string_view key, common::ByteBuf& out, store::ReadFn fn) {
    bool hit = store_.get(worker_, key, out, fn);
    stats_.cmd_get.add();
    (hit ? stats_.get_hits : stats_.get_misses).add();
    return hit;
  }

  // A read that sets a new absolute exptime (gat/gats, TOUCH, GAT*): counts cmd_touch and
  // touch_hits or touch_misses.
  bool get_and_touch(std::string_view key, uint32_t exptime, common::ByteBuf& out,
                     store::ReadFn fn) {
    bool hit = store_.get_and_touch(worker_, key, exptime, out, fn);
    count_touch(hit);
    return hit;
  }

  // touch: as get_and_touch, without reading the item.
  bool touch(std::string_view key, uint32_t exptime) {
    bool hit = store_.touch(worker_, key, exptime);
    count_touch(hit);
    return hit;
  }

  // delete: counts delete_hits or delete_misses.
  bool remove(std::string_view key);

  // A storage command whose value has been read. Counts cmd_set, and cas_hits, cas_badval or
  // cas_misses for Mode::cas, whenever the store decided on the item. When the store refuses it
  // (too_large, no_memory) nothing is counted, since memcached's protocols count that
  // differently, and with drop_on_refusal the key's old value is removed, as memcached does for
  // a set that cannot be stored.
  store::StoreResult update(store::Mode mode, std::string_view key, std::string_view value,
                            uint32_t flags, uint32_t exptime, uint64_t cas_in, uint64_t* cas_out,
                            bool drop_on_refusal);

  // incr/decr: counts incr_hits or decr_hits on success and, if count_miss, incr_misses or
  // decr_misses on a missing key (memcached's binary protocol does not count a miss that
  // creates the item).
  store::DeltaResult delta(std::string_view key, bool incr, uint64_t by, uint64_t* value,
                           uint64_t* cas_out, bool count_miss);

  // flush_all: items become misses after exptime (memcached's rule, 0 or less = now); counts
  // cmd_flush.
  void flush(int64_t exptime);

  store::Store& store() { return store_; }
  store::Worker& worker() { return worker_; }
  WorkerStats& stats() { return stats_; }

 private:
  void count_touch(bool hit) {
    stats_.cmd_touch.add();
    (hit ? stats_.touch_hits : stats_.touch_misses).add();
  }

  store::Store& store_;
  store::Worker& worker_;
  WorkerStats& stats_;
};

// Appends the `stats <group>` text ("STAT <name> <value>\r\n" lines and "END\r\n") for the
// groups every protocol offers: "" (general), "settings", "items", "slabs", "sizes". Returns
// false, appending nothing, for any other group.
bool append_stats_group(ExecShared& shared, std::string_view group, common::ByteBuf& out);

// `stats reset`: zeroes the dataplane and store counters that memcached resets.
void reset_stats(ExecShared& shared);

}  // namespace cachet::dataplane
