// The cache store: items in a shared-memory arena, found through a hash index whose readers
// take no lock, changed one key at a time by a locked read-modify-write. It knows no protocol:
// the rules of memcached's commands, meta, leases and hold-off live in dataplane/ on top of
// read() and update(). One Store per arena; each thread that calls it owns one Worker handle.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_buf.hh"
#include "common/function_ref.hh"
#include "common/hash.hh"
#include "store/arena.hh"
#include "store/index.hh"
#include "store/layout.hh"
#include "store/slabs.hh"
#include "store/transient.hh"

namespace cachet::store {

// memcached's limits, kept so clients see the same boundaries.
inline constexpr size_t kKeyMax = 250;
inline constexpr uint32_t kRelativeExptimeMax = 60 * 60 * 24 * 30;  // 30 days

// Store options: name, default and meaning in one table (composed by cachetd's --help and
// by cachet-control). X(type, name, default, flag, description)
#define CACHET_STORE_OPTIONS(X)                                                                  \
  X(std::string, shm, "", "--shm",                                                               \
    "arena name or path; empty = private arena that dies with the process")                     \
  X(uint64_t, memory_mb, 64, "-m", "item memory in megabytes (slab pages of 1 MB)")             \
  X(uint32_t, item_size_max, 1024 * 1024, "-I", "largest item (key + value + header) in bytes") \
  X(uint32_t, chunk_min, 64, "-n", "smallest slab chunk in bytes")                              \
  X(double, growth_factor, 1.25, "-f", "chunk size growth factor between slab classes")         \
  X(bool, discard_incompatible, false, "--shm-discard",                                          \
    "replace an existing arena whose layout this build cannot read")

struct Options {
#define CACHET_X(type, name, def, flag, desc) type name = def;
  CACHET_STORE_OPTIONS(CACHET_X)
#undef CACHET_X
  unsigned workers = 1;         // number of Worker handles (one per dataplane thread)
  unsigned upkeep_workers = 1;  // and for the background work (one per maintenance thread)
};

// An item as readers and update decisions see it, valid only during the callback that gets it.
// value excludes the trailing "\r\n", but value.data()[value.size()] .. +2 holds "\r\n", so
// value.data() with length value.size() + 2 may be copied out in one piece.
struct ItemView {
  std::string_view key;
  std::string_view value;
  uint32_t flags;
  uint32_t exptime;  // absolute unix seconds, 0 = never
  uint64_t cas;
  uint32_t time;     // unix seconds of the last store or modification
  uint32_t atime;    // unix seconds of the last access (refreshed at most once a minute)
  uint32_t total;    // bytes the item occupies
  uint8_t clsid;     // slab class
  uint8_t marks;     // the protocol marks (Item::marks)
  bool fetched;      // read at least once since stored
  bool hidden;       // Item::kHidden
  const ItemExt* ext;  // the item's ItemExt, nullptr when it has none
};

// What a reader does with the item it is shown: true serves it (a hit: counted, and an
// access unless ReadArgs::bump is off); false declines it (read() returns declined and undoes
// what the callback appended).
using ReadFn = common::FunctionRef<bool(const ItemView&)>;

struct ReadArgs {
  bool bump = true;     // a served read marks the item accessed and fetched
  bool count = true;    // a served read counts in its class's get_hits
  bool hidden = false;  // show hidden items too (else they are misses)
};

enum class ReadResult : uint8_t { miss, hit, declined };

// Per-class counters (memcached's `stats items` names) that an update may count, as bits.
enum Count : uint16_t {
  kCountGetHit = 1 << 0,
  kCountSet = 1 << 1,
  kCountDeleteHit = 1 << 2,
  kCountIncrHit = 1 << 3,
  kCountDecrHit = 1 << 4,
  kCountCasHit = 1 << 5,
  kCountCasBadval = 1 << 6,
  kCountTouchHit = 1 << 7,
};

// Fills the value of a written item (Change::value_len bytes at dst) under the bucket lock;
// `current` is the key's item before the change, nullptr when it had none.
using ComposeFn = common::FunctionRef<void(char* dst, const ItemView* current)>;

// What an update decides for its key. Before the decision runs, the fields hold the current
// item's values (zeros and no ext when it has none) and op is keep.
struct Change {
  enum class Op : uint8_t {
    keep,    // change nothing (counts and bump still apply to the current item)
    edit,    // change the current item in place: exptime, marks, hidden, ext, and with
             // compose its value bytes (value_len must stay the same)
    write,   // link a new item (flags, exptime, marks, hidden, ext, value) in place of the
             // current one, or for a key that had none; it gets a fresh cas
    remove,  // unlink the current item
  };
  Op op = Op::keep;
  uint32_t flags = 0;
  uint32_t exptime = 0;
  uint8_t marks = 0;
  bool hidden = false;
  bool has_ext = false;
  ItemExt ext{};
  bool new_cas = false;  // edit: give the item a fresh cas
  bool restamp = false;  // edit: its modification time becomes now (flush_all uses it)
  bool bump = false;     // an access of the resulting item: CLOCK bit and access time
  bool fetched = false;  // with bump: mark it fetched (read), as reads do
  // write: the new value's length; its bytes come from UpdateArgs::value unless compose is set.
  size_t value_len = 0;
  std::optional<ComposeFn> compose;
  uint16_t counts = 0;  // Count bits, counted in the class of the current (or new) item
};

// Decides a change from the key's current item (nullptr: none, or it expired, was flushed or
// is torn). May run more than once for one update (after the store allocated outside the
// lock); only the last decision is applied, so it must decide from its arguments alone and
// keep any output until update() returns.
using DecideFn = common::FunctionRef<void(const ItemView* current, Change& change)>;

struct UpdateArgs {
  // The value a write takes when Change::compose is not set.
  std::string_view value;
  // The caller expects to write `value` without an ext: allocate and copy it before taking the
  // lock (set, add, replace, cas). Too large or no memory is then reported before deciding.
  bool prepare = false;
};

enum class UpdateResult : uint8_t {
  done,       // the decision was applied
  too_large,  // a write bigger than the largest item; nothing changed
  no_memory,  // no chunk could be found for a write; nothing changed
};

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
  uint64_t number;         // linked items that reads see (hidden ones excluded)
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
  uint64_t ttl_sets;  // items written with an exptime (for the sweep scheduler)
};

// Store-wide figures for `stats` (memcached's names).
struct StoreStats {
  uint64_t curr_items;    // linked items that reads see
  uint64_t hidden_items;  // linked items hidden from reads (kept for the protocol rules)
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
  uint64_t get_expired;            // reads that found an expired item
  uint64_t get_flushed;            // reads that found an item invalidated by flush_all
  uint64_t slabs_moved;            // pages moved between classes (memcached's slabs_moved)
  uint64_t slabs_moved_inline;     // of which by an allocation that found no other memory
  uint64_t slab_reassign_rescues;  // live items of a moved page relocated in their class
  uint64_t slab_reassign_evictions_nomem;  // live items of a moved page evicted: no room
  uint64_t slab_reassign_busy_items;       // chunks a move found in a writer's hands (retried)
  uint64_t slab_reassign_running;          // 1 while a page is being drained
  uint64_t crash_dropped;          // items found torn after a crash and dropped
  uint64_t crash_orphans_freed;    // chunks a crash left taken but unlinked, freed by the scan
  uint64_t crawler_reclaimed;      // dead (expired, flushed) items freed by background sweeps
  uint64_t crawler_items_checked;  // items the background sweeps looked at
  uint64_t transient_added;        // items entered in the transient wheel
  uint64_t transient_untracked;    // short-TTL items the wheel had no room for (left to sweeps)
  uint64_t transient_reaped;       // expired transient items freed by the wheel's reaper
  uint64_t transient_items;        // entries in the wheel now (some may be stale)
  uint64_t transient_bytes;        // memory of the wheel's blocks in use
  uint64_t kv_bytes;               // key + value bytes of linked items
  uint64_t mem_bytes;              // used chunks (slab rounding included) + index + wheel
};

struct WorkerCounters;

// A thread's handle on the store: its counters and its identity. Never shared between threads.
class Worker {
 public:
  unsigned id() const { return id_; }

 private:
  friend class Store;
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
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The key hash every call below takes (computed once per request, e.g. by a burst prefetch).
  static uint64_t hash(std::string_view key) { return common::hash_key(key); }

  // Converts a protocol exptime (0 = never, <= 30 days relative, else absolute unix time,
  // negative = already expired) to the absolute form the store keeps.
  static uint32_t absolute_exptime(int64_t exptime, uint32_t now);

  // Worker handle i (0 <= i < opts.workers), for the calling thread's exclusive use.
  Worker& worker(unsigned i) { return workers_[i]; }
  // Background worker handle i (0 <= i < opts.upkeep_workers), for Upkeep's calls.
  Worker& upkeep_worker(unsigned i) { return workers_[opts_.workers + i]; }

  // Items written with an exptime less than this many seconds ahead are transient: they also
  // go into the transient wheel, whose reaper (Upkeep) frees them a second after they expire.
  // 0: none. Any thread may set it; writes use it from then on.
  void set_transient_ttl(uint32_t seconds) {
    transient_ttl_.store(seconds, std::memory_order_relaxed);
  }
  uint32_t transient_ttl() const { return transient_ttl_.load(std::memory_order_relaxed); }

  // Looks key up without a lock and shows its live item to fn (see ReadFn). fn may append to
  // `out`; when the item changed while fn read it, `out` is cut back and fn runs again on the
  // new state, so fn must only append and decide from the view alone. Expired, flushed and
  // torn items are misses and are reclaimed.
  ReadResult read(Worker& w, std::string_view key, uint64_t hash, const ReadArgs& args,
                  common::ByteBuf& out, ReadFn fn);
  // read() with the defaults: true on a served hit.
  bool get(Worker& w, std::string_view key, uint64_t hash, common::ByteBuf& out, ReadFn fn) {
    return read(w, key, hash, ReadArgs{}, out, fn) == ReadResult::hit;
  }

  // The read-modify-write every change of an item goes through: under the key's bucket lock,
  // decide sees the current item and chooses a Change, which the store applies before
  // unlocking. Chunks are allocated before the lock is taken (then decide runs again) and
  // freed after it is released. *cas_out (if given) gets the resulting item's cas (0 when
  // none is left).
  UpdateResult update(Worker& w, std::string_view key, uint64_t hash, const UpdateArgs& args,
                      DecideFn decide, uint64_t* cas_out = nullptr);

  // Hints before a burst of requests, so that their cache misses overlap: prefetch_bucket
  // starts fetching a key's index bucket and returns the key's hash; prefetch_item, called
  // with that hash once the bucket is likely cached, starts fetching the item. No effect on
  // results; safe from any thread.
  uint64_t prefetch_bucket(std::string_view key) const;
  void prefetch_item(uint64_t hash) const;

  // flush_all [delay]: items stored before now (delay == 0) or before now + delay become
  // misses at now + delay.
  void flush_all(uint32_t delay);

  // Largest value (bytes, without "\r\n") that fits for a key of key_len bytes.
  size_t value_max(size_t key_len) const;
  // Number of slab classes (ids 1..n).
  unsigned slab_classes() const { return slabs_.n_classes(); }
  // The class of an item of `total` bytes (item_total()), 0 when none holds it.
  unsigned class_for(size_t total) const { return slabs_.class_for(total); }

  StoreStats stats() const;
  std::vector<ClassStats> class_stats() const;
  // Zeroes the counters that `stats reset` clears (evictions, hits, ...), not item counts.
  void reset_stats();

  const Options& options() const { return opts_; }

  // Lets another process attach the arena now: marks it detached and drops this process's
  // lock, leaving the (slow, memory-sized) unmapping to destruction. Nothing may use the store
  // afterwards but its destructor.
  void detach();

  // Walks the whole arena (store/check.cc) and checks that it is consistent: every index slot
  // holds a linked, intact item whose key hashes to that bucket; every carved chunk is either
  // linked or on its class's free list, never both; page chains, free lists, overflow chains
  // and the per-class and per-page counts agree. For tests and fuzzing: O(arena), and only
  // while no other thread uses the store. Returns false and appends the problems, one per
  // line, to *report.
  bool check(std::string* report) const;

 private:
  friend class Upkeep;  // the background work on the store (store/upkeep.hh)
  Store(const Options& opts, const Geometry& g, std::unique_ptr<Arena> arena);
  // On attach, after the locks of the index and slabs are broken: the wheel's locks, and after
  // a crash the free-page lists, the wheel and a repair scan to come; a page being moved goes
  // back to its class.
  void recover_on_attach(bool crashed);

  enum class Death { alive, expired, flushed };
  // The lock-free lookup every read shares. retry: something moved under the reader, look
  // again; miss: no live item (an expired, flushed or torn one was reclaimed); implausible: a
  // stable but impossible header, never served; found: *found is live under ticket *t (the
  // caller still validates *t after reading it).
  enum class Lookup { retry, miss, implausible, found };

  Item* item_at(uint64_t off) const { return arena_->at<Item>(off); }
  uint64_t off_of(const Item* it) const { return arena_->offset_of(it); }
  Death death(const Item* it, uint32_t now) const;
  Lookup find_live(Worker& w, std::string_view key, uint64_t h, uint32_t now, Index::Ticket* t,
                   Item** found);
  ItemView view_of(const Item* it) const;
  // A plausible header: class and sizes in range. Torn reads fail this or read_valid.
  bool sane(const Item* it) const;
  // After a crash, whether the item's checksum holds (checked once per item and epoch).
  bool intact(Item* it);
  void seal(Item* it);  // recomputes the checksum after a change
  // Unlinks an item that failed intact(), if it is still linked.
  void drop_torn(Worker& w, uint64_t hash, uint64_t off);
  WorkerCounters& ctr(Worker& w) { return *counters_[w.id()]; }

  // Allocation for class cls; evicts with the CLOCK hand when it must (may_move: Slabs::alloc).
  Item* alloc(Worker& w, unsigned cls, uint32_t now, bool may_move = true);
  uint64_t next_cas() { return hdr_->cas_counter.fetch_add(1, std::memory_order_relaxed) + 1; }

  // Under a guard: makes `slot` point at `fresh` (or inserts it when slot is null) and
  // unlinks what was there. Returns the items the caller must free after unlocking.
  void link(Index::Guard& g, std::atomic<uint64_t>* slot, uint16_t tag, Item* fresh,
            Item** to_free, Item** victim, Worker& w, uint32_t now);
  void unlink(Item* it);
  // An item just linked (or given a new exptime) at `off`: into the transient wheel when its
  // exptime is near. True when the wheel took it (the reaper will free it, not the sweeps).
  bool note_exptime(Worker& w, uint64_t off, uint32_t exptime, uint32_t now);
  void set_hidden(Item* it, bool hidden);
  // Removes a dead item found by a reader, if it is still linked.
  void reap(Worker& w, uint64_t hash, uint64_t off);
  // Under the key's bucket lock: unlinks the item at off if it is still linked there and dead
  // at `now` (the caller counts and frees it). Death::alive when it did nothing.
  Death unlink_if_dead(uint64_t hash, uint64_t off, uint32_t now);
  std::atomic<uint64_t>* find_locked(Index::Guard& g, uint64_t hash, std::string_view key);
  // An access: the CLOCK reference bit, the access time, and with `fetched` the fetched bit.
  void note_fetch(Item* it, uint32_t now, bool fetched = true);
  void count_eviction(Worker& w, const Item* it, uint32_t now, bool expired);
  void count(Worker& w, unsigned cls, uint16_t counts);
  // update()'s edit of the current item, under the lock.
  void apply_edit(Item* it, const Change& ch, const ItemView& before, uint32_t now);
  // update()'s new item, under the lock: header, value, ext and checksum.
  void fill(Item* it, std::string_view key, const Change& ch, const ItemView* current,
            bool value_in_place, std::string_view value, uint32_t now);

  Options opts_;
  Geometry geo_;
  std::unique_ptr<Arena> arena_;
  ArenaHeader* hdr_;
  uint32_t epoch_ = 0;  // this attach's crash epoch (items stamped with it are verified)
  Slabs slabs_;
  Index index_;
  TransientWheel wheel_;
  std::atomic<uint32_t> transient_ttl_{60};
  std::vector<Worker> workers_;  // opts.workers for the dataplane, then opts.upkeep_workers
  std::vector<std::unique_ptr<WorkerCounters>> counters_;
};

}  // namespace cachet::store
