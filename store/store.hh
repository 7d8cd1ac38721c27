// The cache store's public face: items in a shared-memory arena, found through a lock-free-read
// hash index. One Store per arena; each thread that calls it owns one Worker handle.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_buf.hh"
#include "common/function_ref.hh"

namespace cachet::store {

// memcached's limits, kept so clients see the same boundaries.
inline constexpr size_t kKeyMax = 250;
inline constexpr uint32_t kRelativeExptimeMax = 60 * 60 * 24 * 30;  // 30 days

// Store options: name, default and meaning in one table (composed by cachetd's --help and,
// later, by cachet-control). X(type, name, default, flag, description)
#define CACHET_STORE_OPTIONS(X)                                                                  \
  X(std::string, shm, "", "--shm",                                                               \
    "arena name or path; empty = private arena that dies with the process")                     \
  X(uint64_t, memory_mb, 64, "-m", "item memory in megabytes (slab pages of 1 MB)")             \
  X(uint32_t, item_size_max, 1024 * 1024, "-I", "largest item (key + value + header) in bytes") \
  X(uint32_t, chunk_min, 64, "-n", "smallest slab chunk in bytes")                              \
  X(double, growth_factor, 1.07, "-f", "chunk size growth factor between slab classes")         \
  X(bool, discard_incompatible, false, "--shm-discard",                                          \
    "replace an existing arena whose layout this build cannot read")

struct Options {
#define CACHET_X(type, name, def, flag, desc) type name = def;
  CACHET_STORE_OPTIONS(CACHET_X)
#undef CACHET_X
  unsigned workers = 1;  // number of Worker handles (one per dataplane thread)
};

enum class Mode : uint8_t { set, add, replace, append, prepend, cas };

enum class StoreResult : uint8_t {
  stored,      // STORED
  not_stored,  // NOT_STORED (add on present key, replace/append/prepend on missing key)
  exists,      // EXISTS (cas mismatch)
  not_found,   // NOT_FOUND (cas on missing key)
  too_large,   // SERVER_ERROR object too large for cache
  no_memory,   // SERVER_ERROR out of memory storing object
};

enum class DeltaResult : uint8_t { ok, not_found, non_numeric, no_memory };

// A consistent view of a live item, valid only during the callback that receives it.
// value excludes the trailing "\r\n", but value.data()[value.size()] .. +2 holds "\r\n",
// so value.data() with length value.size() + 2 may be copied out in one piece.
struct ItemView {
  std::string_view key;
  std::string_view value;
  uint32_t flags;
  uint32_t exptime;  // absolute unix seconds, 0 = never
  uint64_t cas;
};

// Called with a consistent view of the item. It may append to `out`; if the store then finds
// that the item changed while it was read, `out` is truncated to its size before the call and
// the lookup is retried, so the callback must only append.
using ReadFn = common::FunctionRef<void(const ItemView&)>;

// Per-class figures for `stats slabs` and `stats items` (memcached's field names).
struct ClassStats {
  unsigned id;
  uint32_t chunk_size;
  uint32_t chunks_per_page;
  uint64_t total_pages;
  uint64_t total_chunks;
  uint64_t used_chunks;
  uint64_t free_chunks;
  uint64_t mem_requested;  // bytes of key + value + header in used chunks
  uint64_t number;         // linked items
  uint32_t age;            // seconds since the oldest item's last access (approximate)
  uint64_t evicted;
  uint64_t evicted_nonzero;
  uint32_t evicted_time;  // seconds since last access of the last evicted item
  uint64_t evicted_unfetched;
  uint64_t expired_unfetched;
  uint64_t reclaimed;
  uint64_t outofmemory;
  uint64_t get_hits, cmd_set, delete_hits, incr_hits, decr_hits, cas_hits, cas_badval,
      touch_hits;
};

// Store-wide figures for `stats` (memcached's names).
struct StoreStats {
  uint64_t curr_items;
  uint64_t total_items;
  uint64_t bytes;  // bytes used by linked items
  uint64_t evictions;
  uint64_t reclaimed;
  uint64_t expired_unfetched;
  uint64_t evicted_unfetched;
  uint64_t limit_maxbytes;
  uint64_t total_malloced;  // slab pages handed to classes, in bytes
  uint64_t hash_power_level;
  uint64_t hash_bytes;
  uint64_t hash_is_expanding;
  uint64_t slab_global_page_pool;  // pages not yet given to any class
  uint64_t get_expired;            // gets that found an expired item
  uint64_t get_flushed;            // gets that found an item invalidated by flush_all
  uint64_t slabs_moved;            // pages moved between classes (memcached's slabs_moved)
  uint64_t crash_dropped;          // items found torn after a crash and dropped
};

// ---- The meta protocol's item operations (mg ms md ma me), implemented in store_meta.cc ----

// An item as a meta command sees it. The facts describe the item before this request; the
// last three fields start as shown and the callback may change them: the store then applies
// them under the item's bucket lock.
struct MetaView {
  ItemView item;     // item.exptime: the exptime before this request
  uint32_t atime;    // unix seconds of the last access before this request
  uint32_t total;    // bytes the item occupies (header, key, value)
  uint8_t clsid;     // slab class
  bool fetched;      // read at least once before this request (mg h, me fetch=)
  bool stale;        // invalidated by md I or ms I: still served, marked X
  bool win_sent;     // a client was already told to recache it (mg Z)
  bool key_binary;   // stored by ms with a base64 key (b): mg k echoes it encoded
  bool created;      // made empty by this request (MetaGetArgs::vivify)
  uint32_t exptime;  // may change: the item's new exptime (starts as item.exptime)
  bool win;          // may set: this client wins the recache (win_sent becomes true)
  bool bump;         // may clear: count this read as an access (starts as MetaGetArgs::bump)
};
using MetaFn = common::FunctionRef<void(MetaView&)>;

struct MetaGetArgs {
  bool bump = true;     // mark the item fetched and refresh its access time (mg without u)
  bool count = true;    // count a hit in the class counters (me does not)
  bool touch = false;   // the request sets the exptime (mg T): counted as a touch, locked at once
  bool vivify = false;  // on a miss, link an empty item (flags 0, exptime 0) and report it
};

struct MetaStoreArgs {
  Mode mode = Mode::set;    // Mode::cas: ms C in set or replace mode
  uint64_t cas_in = 0;      // cas: must equal the item's; append/prepend: the same when nonzero
  bool invalidate = false;  // cas: a cas_in below the item's stores anyway, marked stale, with
                            // the old exptime and win state (ms I)
  bool key_binary = false;  // the key came base64-encoded (ms b)
};

enum class MetaDeleteResult : uint8_t { deleted, invalidated, not_found, exists };

struct MetaDeleteArgs {
  bool has_cas = false;     // the item's cas must equal cas_in, else `exists` (md C)
  uint64_t cas_in = 0;
  bool invalidate = false;  // keep the item: mark it stale, give it a new cas and let one
                            // client win its recache again (md I)
  bool touch = false;       // with invalidate: set exptime too (md I T)
  uint32_t exptime = 0;
};

enum class MetaDeltaResult : uint8_t { ok, created, not_found, exists, non_numeric, no_memory };

struct MetaDeltaArgs {
  bool incr = true;
  uint64_t delta = 1;
  uint64_t cas_in = 0;          // nonzero: the item's cas must match, else `exists` (ma C)
  bool touch = false;           // an existing item's exptime after the change (ma T)
  uint32_t exptime = 0;
  bool vivify = false;          // on a miss, create the item holding `initial` (ma N J)
  uint64_t initial = 0;
  uint32_t vivify_exptime = 0;  // a created item's exptime
};

struct MetaDeltaOut {
  uint64_t value = 0;    // the number now stored
  uint64_t cas = 0;      // the item's cas now
  uint32_t exptime = 0;  // the exptime before args.touch/vivify_exptime applied (0 if created)
};

class Store;

// A thread's handle on the store: its counters and its identity. Never shared between threads.
class Worker {
 public:
  unsigned id() const { return id_; }

 private:
  friend class Store;
  friend class StoreImpl;
  explicit Worker(unsigned id) : id_(id) {}
  unsigned id_;
};

class Store {
 public:
  // Creates the arena, or attaches an existing named one whose layout and geometry match.
  // Returns nullptr and sets *error (a sentence naming the problem) on failure; an existing
  // arena of another layout is refused unless opts.discard_incompatible.
  static std::unique_ptr<Store> open(const Options& opts, std::string* error);
  // Checks, without attaching, that open(opts) would keep the existing arena (same layout
  // and geometry, or none yet). False with *error saying why not. Takes no lock.
  static bool probe(const Options& opts, std::string* error);
  virtual ~Store() = default;

  // Worker handle i (0 <= i < opts.workers), for the calling thread's exclusive use.
  virtual Worker& worker(unsigned i) = 0;

  // Looks key up; on a live item calls fn (see ReadFn) and returns true.
  // Expired and flushed items are misses and are reclaimed. get_and_touch (gat/gats) sets the
  // new exptime before reading.
  virtual bool get(Worker& w, std::string_view key, common::ByteBuf& out, ReadFn fn) = 0;
  // Hints before a burst of gets, so that their cache misses overlap: prefetch_bucket starts
  // fetching a key's index bucket and returns the key's hash; prefetch_item, called with that
  // hash once the bucket is likely cached, starts fetching the item. No effect on results; safe
  // from any thread.
  virtual uint64_t prefetch_bucket(std::string_view key) const = 0;
  virtual void prefetch_item(uint64_t hash) const = 0;
  virtual bool get_and_touch(Worker& w, std::string_view key, uint32_t exptime,
                             common::ByteBuf& out, ReadFn fn) = 0;

  // set/add/replace/append/prepend/cas. exptime is already absolute (see absolute_exptime);
  // cas_in is used only by Mode::cas. For append/prepend, flags and exptime are ignored (the
  // existing item's are kept), as memcached does. On success *cas_out (if given) gets the new cas.
  virtual StoreResult store(Worker& w, Mode mode, std::string_view key, std::string_view value,
                            uint32_t flags, uint32_t exptime, uint64_t cas_in,
                            uint64_t* cas_out = nullptr) = 0;

  // Removes key. Returns false when it was not there (NOT_FOUND).
  virtual bool remove(Worker& w, std::string_view key) = 0;

  // Sets the exptime of a live item. Returns false on a miss.
  virtual bool touch(Worker& w, std::string_view key, uint32_t exptime) = 0;

  // incr (incr=true) or decr by delta, memcached's rules: the value must read as an unsigned
  // 64-bit decimal (trailing spaces allowed, as memcached's safe_strtoull); incr wraps at 2^64,
  // decr stops at 0; a result no longer than the old value is written in place padded with
  // spaces, as memcached does. *result receives the new value.
  virtual DeltaResult delta(Worker& w, std::string_view key, bool incr, uint64_t delta,
                            uint64_t* result, uint64_t* cas_out = nullptr) = 0;

  // flush_all [delay]: items stored before now (delay == 0) or before now + delay become
  // misses at now + delay.
  virtual void flush_all(Worker& w, uint32_t delay) = 0;

  // Converts a protocol exptime (0 = never, <= 30 days relative, else absolute unix time,
  // negative = already expired) to the absolute form the store keeps.
  static uint32_t absolute_exptime(int64_t exptime, uint32_t now);

  // Largest value (bytes, without "\r\n") that fits for a key of key_len bytes.
  virtual size_t value_max(size_t key_len) const = 0;

  virtual StoreStats stats() const = 0;
  virtual std::vector<ClassStats> class_stats() const = 0;
  // Zeroes the counters that `stats reset` clears (evictions, hits, ...), not item counts.
  virtual void reset_stats() = 0;

  virtual const Options& options() const = 0;

  // Lets another process attach the arena now: marks it detached and drops this process's
  // lock, leaving the (slow, memory-sized) unmapping to destruction. Nothing may use the store
  // afterwards but its destructor.
  virtual void detach() = 0;

  // ---- Meta protocol (store_meta.cc). Same locking rules as the methods above.

  // mg and me: looks key up and calls fn with its MetaView; returns false on a miss without
  // calling fn, unless args.vivify linked a new empty item. fn may append to `out` and change
  // the view's exptime/win/bump. When it asks for a change on a lock-free read, the store
  // truncates `out`, takes the bucket lock, calls fn again on a fresh view and applies the
  // changes under the lock; so fn must only append and decide from the view alone.
  virtual bool meta_get(Worker& w, std::string_view key, const MetaGetArgs& args,
                        common::ByteBuf& out, MetaFn fn) = 0;
  // ms: store() with the meta extras of MetaStoreArgs. Mode::add ignores cas_in (memcached).
  virtual StoreResult meta_store(Worker& w, std::string_view key, std::string_view value,
                                 uint32_t flags, uint32_t exptime, const MetaStoreArgs& args,
                                 uint64_t* cas_out = nullptr) = 0;
  // md: removes or invalidates key (see MetaDeleteArgs).
  virtual MetaDeleteResult meta_delete(Worker& w, std::string_view key,
                                       const MetaDeleteArgs& args) = 0;
  // ma: delta() with a cas check, an exptime update and creation on a miss. An empty value
  // is non_numeric before the cas check, as in memcached.
  virtual MetaDeltaResult meta_delta(Worker& w, std::string_view key, const MetaDeltaArgs& args,
                                     MetaDeltaOut* out) = 0;
  // Number of slab classes (ids 1..n), for `slabs reassign` argument checks.
  virtual unsigned slab_classes() const = 0;
};

}  // namespace cachet::store
