// The Store implementation's shape: arena, slabs, index and per-worker counters. Private to
// store/; everything else sees store/store.hh.
#pragma once

#include <array>
#include <cstring>
#include <atomic>
#include <deque>
#include <memory>
#include <string_view>

#include "common/counter.hh"
#include "common/hash.hh"
#include "store/arena.hh"
#include "store/index.hh"
#include "store/slabs.hh"
#include "store/store.hh"

namespace cachet::store {

// The checksum kept in each item: key, value and flags, checked when a crash leaves doubt.
inline uint32_t item_checksum(const Item* it) {
  return static_cast<uint32_t>(XXH3_64bits_withSeed(it->key(), it->nkey + it->nbytes, it->flags));
}

using common::Counter;

inline bool key_matches(const Item* it, std::string_view key) {
  return it->nkey == key.size() && std::memcmp(it->key(), key.data(), key.size()) == 0;
}

// memcached's safe_strtoull over an item value (which ends in "\r\n"): incr/decr's rule.
bool parse_counter(const char* data, size_t len, uint64_t* out);

// Per-class counters of one worker (memcached's per-slab-class names).
#define CACHET_CLASS_COUNTERS(X) \
  X(get_hits) X(cmd_set) X(delete_hits) X(incr_hits) X(decr_hits) X(cas_hits) X(cas_badval) \
  X(touch_hits) X(evicted) X(evicted_nonzero) X(evicted_unfetched) X(expired_unfetched)      \
  X(reclaimed) X(outofmemory)

struct ClassCounters {
#define CACHET_X(n) Counter n;
  CACHET_CLASS_COUNTERS(CACHET_X)
#undef CACHET_X
  std::atomic<uint32_t> evicted_time{0};  // age of the last evicted item, seconds
};

struct alignas(kCacheLine) WorkerCounters {
  Counter total_items;
  Counter crash_dropped;  // items found torn after a crash, dropped
  Counter get_expired;
  Counter get_flushed;
  std::array<ClassCounters, kMaxClasses> cls;
};

class StoreImpl final : public Store {
 public:
  StoreImpl(const Options& opts, const Geometry& g, std::unique_ptr<Arena> arena);
  ~StoreImpl() override;

  Worker& worker(unsigned i) override { return workers_[i]; }
  bool get(Worker& w, std::string_view key, common::ByteBuf& out, ReadFn fn) override;
  uint64_t prefetch_bucket(std::string_view key) const override;
  void prefetch_item(uint64_t hash) const override;
  bool get_and_touch(Worker& w, std::string_view key, uint32_t exptime, common::ByteBuf& out,
                     ReadFn fn) override;
  StoreResult store(Worker& w, Mode mode, std::string_view key, std::string_view value,
                    uint32_t flags, uint32_t exptime, uint64_t cas_in,
                    uint64_t* cas_out) override;
  bool remove(Worker& w, std::string_view key) override;
  bool touch(Worker& w, std::string_view key, uint32_t exptime) override;
  DeltaResult delta(Worker& w, std::string_view key, bool incr, uint64_t delta, uint64_t* result,
                    uint64_t* cas_out) override;
  void flush_all(Worker& w, uint32_t delay) override;
  size_t value_max(size_t key_len) const override;
  StoreStats stats() const override;
  std::vector<ClassStats> class_stats() const override;
  void reset_stats() override;
  const Options& options() const override { return opts_; }
  void detach() override;
  // Meta protocol (store_meta.cc).
  bool meta_get(Worker& w, std::string_view key, const MetaGetArgs& args, common::ByteBuf& out,
                MetaFn fn) override;
  StoreResult meta_store(Worker& w, std::string_view key, std::string_view value, uint32_t flags,
                         uint32_t exptime, const MetaStoreArgs& args,
                         uint64_t* cas_out) override;
  MetaDeleteResult meta_delete(Worker& w, std::string_view key,
                               const MetaDeleteArgs& args) override;
  MetaDeltaResult meta_delta(Worker& w, std::string_view key, const MetaDeltaArgs& args,
                             MetaDeltaOut* out) override;
  unsigned slab_classes() const override { return slabs_.n_classes(); }

 private:
  enum class Death { alive, expired, flushed };

  Item* item_at(uint64_t off) const { return arena_->at<Item>(off); }
  uint64_t off_of(const Item* it) const { return arena_->offset_of(it); }
  Death death(const Item* it, uint32_t now) const;
  // The lock-free lookup every read shares. retry: something moved under the reader, look
  // again; miss: no live item (an expired, flushed or torn one was reclaimed); implausible: a
  // stable but impossible header, never served; found: *found is live under ticket *t (the
  // caller still validates *t after reading it).
  enum class Lookup { retry, miss, implausible, found };
  Lookup find_live(Worker& w, std::string_view key, uint64_t h, uint32_t now, Index::Ticket* t,
                   Item** found);
  // A plausible header: class and sizes in range. Torn reads fail this or read_valid.
  bool sane(const Item* it) const;
  // After a crash, whether the item's checksum holds (checked once per item and epoch).
  bool intact(Item* it);
  // Unlinks an item that failed intact(), if it is still linked.
  void drop_torn(Worker& w, uint64_t hash, uint64_t off);
  WorkerCounters& ctr(Worker& w) { return *counters_[w.id()]; }

  // Allocation for class cls; evicts with the CLOCK hand when it must.
  Item* alloc(Worker& w, unsigned cls, uint32_t now);
  void fill(Item* it, std::string_view key, std::string_view value, uint32_t flags,
            uint32_t exptime, uint32_t now);
  uint64_t next_cas() { return hdr_->cas_counter.fetch_add(1, std::memory_order_relaxed) + 1; }

  // Under a guard: makes `slot` point at `fresh` (or inserts it when slot is null) and
  // unlinks what was there. Returns the items the caller must free after unlocking.
  void link(Index::Guard& g, std::atomic<uint64_t>* slot, uint16_t tag, Item* fresh,
            Item** to_free, Item** victim, Worker& w, uint32_t now);
  void unlink(Item* it);
  // Removes a dead item found by a reader, if it is still linked.
  void reap(Worker& w, uint64_t hash, uint64_t off, Death why);
  std::atomic<uint64_t>* find_locked(Index::Guard& g, uint64_t hash, std::string_view key);
  void note_fetch(Item* it, uint32_t now);
  void count_eviction(Worker& w, const Item* it, uint32_t now, bool expired);
  // store_meta.cc helpers.
  MetaView meta_view(Item* it, std::string_view key, const MetaGetArgs& a) const;
  bool meta_get_locked(Worker& w, std::string_view key, uint64_t hash, const MetaGetArgs& a,
                       MetaFn fn, uint32_t now);
  void meta_apply(Worker& w, Item* it, const MetaView& m, const MetaGetArgs& a, uint32_t now);

  Options opts_;
  Geometry geo_;
  std::unique_ptr<Arena> arena_;
  ArenaHeader* hdr_;
  uint32_t epoch_ = 0;  // this attach's crash epoch (items stamped with it are verified)
  Slabs slabs_;
  Index index_;
  std::deque<Worker> workers_;
  std::vector<std::unique_ptr<WorkerCounters>> counters_;
};

}  // namespace cachet::store
