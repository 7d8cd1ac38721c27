// memcached's per-item rules (get, touch, set/add/replace/append/prepend/cas, delete, incr/
// decr, flush) on top of the store's read and read-modify-write, shared by the text, meta and
// binary executors; plus the two rules mcrouter's dialect adds to them: a delete keeps the old
// value hidden for stale reads, and `delete <key> <seconds>` holds fills of the key off.
// Hidden items (dataplane/marks.hh) are absent to all of these.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/byte_buf.hh"
#include "dataplane/stats.hh"
#include "dataplane/tunables.hh"
#include "store/store.hh"

namespace cachet::dataplane {

// A protocol exptime (0 never, <= 30 days relative, else absolute unix time, negative already
// expired) in the absolute form the store keeps, against the current clock.
uint32_t store_exptime(int64_t exptime);

// memcached's safe_strtoull over an item value (which ends in "\r\n"): incr/decr's rule.
bool parse_counter(const char* data, size_t len, uint64_t* out);

enum class Mode : uint8_t { set, add, replace, append, prepend, cas };

enum class StoreResult : uint8_t {
  stored,      // STORED
  not_stored,  // NOT_STORED (add on a present or held-off key, replace/append/prepend on none)
  exists,      // EXISTS (cas mismatch)
  not_found,   // NOT_FOUND (cas on a missing key)
  too_large,   // SERVER_ERROR object too large for cache
  no_memory,   // SERVER_ERROR out of memory storing object
};

struct StoreArgs {
  Mode mode = Mode::set;
  uint64_t cas_in = 0;      // cas: must equal the item's; append/prepend: the same when nonzero
  bool invalidate = false;  // cas: a cas_in below the item's stores anyway, marked stale, with
                            // the old exptime, win state and lease (meta's ms I)
  bool key_binary = false;  // the key came base64-encoded (ms b)
};

enum class DeleteResult : uint8_t { deleted, invalidated, not_found, exists };

struct DeleteArgs {
  bool has_cas = false;     // the item's cas must equal cas_in, else `exists` (md C, binary)
  uint64_t cas_in = 0;
  bool invalidate = false;  // keep the item: mark it stale, give it a new cas and let one
                            // client win its refill again (md I)
  bool touch = false;       // with invalidate: set exptime too (md I T)
  uint32_t exptime = 0;
  uint64_t holdoff = 0;     // seconds to refuse add and lease-set of the key (clamped)
};

enum class DeltaResult : uint8_t { ok, created, not_found, exists, non_numeric, no_memory };

struct DeltaArgs {
  bool incr = true;
  uint64_t delta = 1;
  uint64_t cas_in = 0;          // nonzero: the item's cas must match, else `exists`
  bool touch = false;           // an existing item's exptime after the change (ma T)
  uint32_t exptime = 0;
  bool vivify = false;          // on a miss, create the item holding `initial`
  uint64_t initial = 0;
  uint32_t vivify_exptime = 0;  // a created item's exptime
  bool key_binary = false;      // the key came base64-encoded (ma b): a created item is marked so
};

struct DeltaOut {
  uint64_t value = 0;    // the number now stored
  uint64_t cas = 0;      // the item's cas now
  uint32_t exptime = 0;  // the exptime before args.touch/vivify_exptime applied (0 if created)
  bool creating = false;  // the key was missing and args.vivify asked to create it
};

// Sees an item under its bucket lock (gat's reply is written there).
using ItemFn = common::FunctionRef<void(const store::ItemView&)>;

// One worker's rules: its store handle, its counters and the shared tunables. Cheap to make;
// used only on the worker's thread. Methods named *_item count nothing in the dataplane's
// counters (each protocol counts as memcached does for it); the others count as the text
// protocol does.
class ItemRules {
 public:
  ItemRules(store::Store& s, store::Worker& w, WorkerStats& st, const Tunables& t)
      : store_(s), worker_(w), stats_(st), tunables_(t) {}

  // get/gets: counts cmd_get and get_hits or get_misses.
  bool get(std::string_view key, uint64_t hash, common::ByteBuf& out, store::ReadFn fn) {
    bool hit = store_.get(worker_, key, hash, out, fn);
    stats_.cmd_get.add();
    (hit ? stats_.get_hits : stats_.get_misses).add();
    return hit;
  }
  // gat/gats (fn non-null) and touch: sets the exptime of a live item; counts cmd_touch and
  // touch_hits or touch_misses.
  bool get_and_touch(std::string_view key, uint64_t hash, uint32_t exptime, ItemFn* fn);

  // A storage command whose value has been read; counts cmd_set, and cas_hits, cas_badval or
  // cas_misses for Mode::cas, whenever the rules decided on the item. Refusals (too_large,
  // no_memory) count nothing; with drop_on_refusal they remove the key's old value, as
  // memcached does for a set it cannot store.
  StoreResult update(std::string_view key, uint64_t hash, std::string_view value, uint32_t flags,
                     uint32_t exptime, const StoreArgs& args, uint64_t* cas_out,
                     bool drop_on_refusal);
  // delete: counts delete_hits or delete_misses.
  DeleteResult remove(std::string_view key, uint64_t hash, const DeleteArgs& args);
  // incr/decr: counts incr_hits or decr_hits, and with count_miss incr_misses or decr_misses.
  DeltaResult delta(std::string_view key, uint64_t hash, const DeltaArgs& args, DeltaOut* out,
                    bool count_miss);
  // flush_all: items become misses after exptime (memcached's rule, 0 or less = now).
  void flush(int64_t exptime);

  // The uncounted rules.
  bool touch_item(std::string_view key, uint64_t hash, uint32_t exptime, ItemFn* fn);
  StoreResult store_item(std::string_view key, uint64_t hash, std::string_view value,
                         uint32_t flags, uint32_t exptime, const StoreArgs& args,
                         uint64_t* cas_out);
  DeleteResult delete_item(std::string_view key, uint64_t hash, const DeleteArgs& args);
  DeltaResult delta_item(std::string_view key, uint64_t hash, const DeltaArgs& args,
                         DeltaOut* out);
  // Removes whatever the key holds, hidden or not (a refused set's cleanup).
  void drop(std::string_view key, uint64_t hash);

  store::Store& store() { return store_; }
  store::Worker& worker() { return worker_; }
  WorkerStats& stats() { return stats_; }
  const Tunables& tunables() const { return tunables_; }

 private:
  store::Store& store_;
  store::Worker& worker_;
  WorkerStats& stats_;
  const Tunables& tunables_;
};

}  // namespace cachet::dataplane
