// The arena's on-memory layout: every structure that lives in shared memory, addressed by
// offsets from the arena base so a new process can map it anywhere. Changing any of these
// structures means bumping kLayoutVersion.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cachet::store {

inline constexpr char kMagic[8] = {'C', 'A', 'C', 'H', 'E', 'T', 'A', '1'};
inline constexpr uint32_t kLayoutVersion = 3;
inline constexpr uint32_t kMaxClasses = 255;  // class ids 1..254 (0 = none)
inline constexpr size_t kCacheLine = 64;
inline constexpr size_t kHeaderBytes = 4096;
inline constexpr size_t kGuardBytes = 4096;  // mapped past the end: a torn read never faults

// A spinlock word in shared memory. Holders never sleep while holding it.
struct SpinLock {
  std::atomic<uint32_t> word{0};
  void lock();
  void unlock() { word.store(0, std::memory_order_release); }
};

// Fields the protocol rules (dataplane/) keep on an item that needs them: a lease token and the
// times of its window, stale reads and hold-off. The store stores, copies and checksums them and
// never reads them. Items without one (Item::kExt clear) pay nothing.
struct ItemExt {
  uint64_t token;        // a lease token bound to this key, 0 = none
  uint32_t token_time;   // unix seconds when the token was issued
  uint32_t stale_until;  // unix seconds until which a kept value may be served as stale
  uint32_t holdoff_until;  // unix seconds until which fills of the key are refused
  uint32_t spare;        // zero
};
static_assert(sizeof(ItemExt) == 24);

// Item header; key bytes follow, then the value with its trailing "\r\n", then (with kExt) an
// ItemExt at the next 8-byte boundary.
struct Item {
  uint64_t cas;      // on a free chunk: offset of the next free chunk
  uint32_t nbytes;   // value length including "\r\n"
  uint32_t flags;    // client flags
  uint32_t exptime;  // absolute unix seconds, 0 = never
  uint32_t time;     // unix seconds of the last store or modification (flush_all uses it)
  uint32_t atime;    // unix seconds of the last access, refreshed at most once a minute
  uint32_t checksum; // xxh3 over key, value and ext, seeded with flags, for crash validation
  std::atomic<uint8_t> state;
  uint8_t nkey;
  uint8_t clsid;
  // Protocol marks: eight bits the protocol rules (dataplane/) define and change under the
  // item's bucket lock; the store keeps and copies them and never reads them.
  uint8_t marks;
  uint32_t epoch;    // crash epoch in which the checksum was last known good

  static constexpr uint8_t kLinked = 1;    // reachable from the index
  static constexpr uint8_t kAccessed = 2;  // CLOCK reference bit
  static constexpr uint8_t kFetched = 4;   // read at least once since stored
  static constexpr uint8_t kFree = 8;      // on a free list
  // Linked but absent to plain reads (Store::read without ReadArgs::hidden): a tombstone or a
  // kept value that the protocol rules still need. Not counted in curr_items; never marked
  // accessed, so the CLOCK hand takes it first.
  static constexpr uint8_t kHidden = 16;
  static constexpr uint8_t kExt = 32;  // an ItemExt follows the value

  char* key() { return reinterpret_cast<char*>(this + 1); }
  const char* key() const { return reinterpret_cast<const char*>(this + 1); }
  char* value() { return key() + nkey; }
  const char* value() const { return key() + nkey; }
  bool has_ext() const { return state.load(std::memory_order_relaxed) & kExt; }
  // Byte offset of the ext from the item's start (8-aligned, after the value).
  static size_t ext_offset(size_t nkey, size_t nbytes) {
    return (sizeof(Item) + nkey + nbytes + 7) & ~size_t{7};
  }
  ItemExt* ext() { return reinterpret_cast<ItemExt*>(reinterpret_cast<char*>(this) + ext_offset(nkey, nbytes)); }
  const ItemExt* ext() const {
    return reinterpret_cast<const ItemExt*>(reinterpret_cast<const char*>(this) + ext_offset(nkey, nbytes));
  }
  size_t total() const {
    return has_ext() ? ext_offset(nkey, nbytes) + sizeof(ItemExt) : sizeof(Item) + nkey + nbytes;
  }
};
static_assert(sizeof(Item) == 40, "item header is part of the arena layout");
static_assert(alignof(Item) == 8);

// Bytes an item of this key and value (without "\r\n") occupies, with or without an ItemExt.
inline size_t item_total(size_t nkey, size_t value_len, bool ext = false) {
  return ext ? Item::ext_offset(nkey, value_len + 2) + sizeof(ItemExt)
             : sizeof(Item) + nkey + value_len + 2;
}

// One slab class: chunk geometry, its pages, the pages that have free chunks, its CLOCK hand.
struct alignas(kCacheLine) ClassState {
  uint32_t chunk_size;
  uint32_t chunks_per_page;
  SpinLock lock;
  uint32_t n_pages;
  uint32_t first_page;  // page index of the class's first page (pages chain through PageInfo)
  uint32_t last_page;
  uint32_t carve_page;  // page being carved (lazy: chunks handed out in order), or kNoPage;
                        // more pages may wait after it (PageInfo::carve_next)
  uint32_t hand_page;   // CLOCK hand: page and chunk
  uint32_t hand_chunk;
  uint32_t free_pages;  // first page on the class's list of pages with free chunks, or kNoPage
  uint64_t free_count;  // free chunks in the class's pages (draining page included)
  std::atomic<uint64_t> number;         // linked items
  std::atomic<uint64_t> mem_requested;  // bytes of linked items (header + key + value)
  std::atomic<uint64_t> hidden;         // linked items marked Item::kHidden
  std::atomic<uint64_t> kv_bytes;       // key + value bytes of linked items (memory efficiency)
};
static_assert(sizeof(ClassState) == 128);

// One slab page. Free chunks are listed per page (chunk index + 1 in Item::cas of a free chunk),
// and the pages that have some are listed per class, so a page leaves its class's free space in
// one step when the page mover starts draining it.
struct PageInfo {
  uint32_t clsid;     // 0 = not given to a class
  uint32_t next;      // next page of the same class, kNoPage at the end
  uint32_t used;      // carved chunks not free (linked, or in a writer's or a dead process's hands)
  uint32_t given_ms;  // low 32 bits of the unix time in ms when the class got the page
  uint32_t carved;    // chunks handed out of the page so far (all of them once carved)
  uint32_t free_head;  // index + 1 of the page's first free chunk, 0 = none
  uint32_t free_count;
  uint32_t free_next;  // neighbours on the class's list of pages with free chunks
  uint32_t free_prev;
  uint32_t carve_next;  // next page waiting to be carved after this one, kNoPage = none
  uint32_t flags;       // kListed, kDraining
  uint32_t spare;

  static constexpr uint32_t kListed = 1;    // on the class's free_pages list
  static constexpr uint32_t kDraining = 2;  // being emptied by the page mover: nothing new lands here
};
static_assert(sizeof(PageInfo) == 48);
inline constexpr uint32_t kNoPage = 0xffffffffu;

// A hash bucket: 7 slots on one cache line. A slot is (16-bit tag << 48) | item offset, 0 when
// empty. `version` is a seqlock: odd while a writer holds the bucket, bumped on every change of
// the bucket or its overflow chain, so readers take no lock and retry when it moved.
struct alignas(kCacheLine) Bucket {
  static constexpr int kSlots = 7;
  std::atomic<uint32_t> version;
  uint32_t overflow;  // 1-based index into the overflow pool, 0 = none
  std::atomic<uint64_t> slot[kSlots];
};
static_assert(sizeof(Bucket) == 64);

inline constexpr uint64_t kOffsetMask = (uint64_t{1} << 48) - 1;
inline uint64_t make_slot(uint16_t tag, uint64_t off) { return (uint64_t{tag} << 48) | off; }
inline uint16_t slot_tag(uint64_t s) { return static_cast<uint16_t>(s >> 48); }
inline uint64_t slot_offset(uint64_t s) { return s & kOffsetMask; }

// The index's shared state. Linear hashing: 2^level + split buckets are in use; buckets below
// `split` have been split at this level. shape packs (level << 32) | split.
struct alignas(kCacheLine) IndexHeader {
  std::atomic<uint64_t> shape;
  uint64_t max_buckets;   // directory capacity (power of two)
  uint32_t min_level;
  uint32_t overflow_max;  // overflow pool size
  SpinLock overflow_lock;
  uint32_t overflow_free;  // 1-based head of the free overflow buckets, 0 = none
  uint32_t overflow_used;  // high-water mark of the pool (never-used buckets follow it)
  SpinLock grow_lock;      // one splitter at a time
  std::atomic<uint64_t> items;  // linked items, drives growth
  std::atomic<uint64_t> overflow_in_use;
};

// The transient item cache (the paper's 6.3): for each second of expiry, lists of the offsets
// of items stored with a short TTL. The lists are outside the items: an entry costs 8 bytes for
// a transient item and nothing for any other, and a stale entry (the item was replaced, deleted,
// evicted or moved since) is harmless, because the reaper frees only what it finds linked and
// expired under the item's bucket lock. Blocks of entries come from a pool in the arena.
inline constexpr uint32_t kWheelSeconds = 4096;  // above the largest transient TTL (3600 s)
inline constexpr uint32_t kWheelLanes = 4;       // writers on different lanes share no lock
inline constexpr size_t kWheelBlockBytes = 4096;

struct WheelList {
  SpinLock lock;
  uint32_t head;  // 1-based block index, 0 = empty
  uint32_t tail;
  uint32_t count;  // entries
};
static_assert(sizeof(WheelList) == 16);

struct WheelBlock {
  static constexpr uint32_t kEntries = (kWheelBlockBytes - 8) / 8;
  uint32_t next;  // 1-based, 0 = end (also the pool's free-list link)
  uint32_t n;
  uint64_t off[kEntries];
};
static_assert(sizeof(WheelBlock) == kWheelBlockBytes);

struct alignas(kCacheLine) WheelHeader {
  uint32_t n_blocks;
  SpinLock pool_lock;
  uint32_t pool_free;  // 1-based head of the free blocks, 0 = none
  uint32_t pool_used;  // blocks ever handed out (never-used ones follow)
  std::atomic<uint32_t> reaped_until;   // every second up to this one has been reaped
  std::atomic<uint32_t> blocks_in_use;
  std::atomic<uint64_t> entries;        // entries in the lists
};

// The arena header at offset 0. Geometry fields are fixed at creation; an attaching process
// must find the same geometry it was asked for.
struct alignas(kCacheLine) ArenaHeader {
  char magic[8];
  uint32_t layout_version;
  uint32_t header_bytes;
  uint64_t arena_bytes;  // mapped size, without the guard
  uint64_t page_size;
  uint32_t n_pages;
  uint32_t n_classes;  // class ids 1..n_classes
  uint32_t chunk_min;
  uint32_t item_size_max;
  double growth_factor;
  uint64_t off_classes;  // ClassState[kMaxClasses]
  uint64_t off_pages;    // PageInfo[n_pages]
  uint64_t off_index;    // IndexHeader
  uint64_t off_buckets;  // Bucket[max_buckets]
  uint64_t off_overflow; // Bucket[overflow_max]
  uint64_t off_items;    // n_pages pages of page_size
  uint64_t off_wheel;    // WheelHeader, then WheelList[kWheelSeconds * kWheelLanes]
  uint64_t off_wheel_blocks;  // WheelBlock[wheel_blocks]
  uint32_t wheel_blocks;
  uint64_t created_unix;
  std::atomic<uint64_t> cas_counter;
  std::atomic<uint32_t> pages_given;  // pages handed to classes so far (in order)
  std::atomic<uint32_t> oldest_live;  // flush_all with delay: items with time <= this are gone
  std::atomic<uint64_t> oldest_cas;   // flush_all now: items with cas <= this are gone
  std::atomic<uint32_t> attached;     // 1 while a process is attached (crash detection)
  std::atomic<uint32_t> epoch;        // bumped by every attach after an unclean detach
  SpinLock page_lock;
  // The page the mover is draining (kNoPage: none), so that an attach after a crash gives it
  // back to its class.
  std::atomic<uint32_t> move_page;
  // 1 from an attach after a crash until a scan of every page has freed the chunks the dead
  // process had taken but not linked (kept here: a later attach finishes an unfinished scan).
  std::atomic<uint32_t> repair_pending;
};

}  // namespace cachet::store
