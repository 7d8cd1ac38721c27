// The arena's on-memory layout: every structure that lives in shared memory, addressed by
// offsets from the arena base so a new process can map it anywhere. Changing any of these
// structures means bumping kLayoutVersion.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cachet::store {

inline constexpr char kMagic[8] = {'C', 'A', 'C', 'H', 'E', 'T', 'A', '1'};
inline constexpr uint32_t kLayoutVersion = 1;
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

// Item header; key bytes follow, then the value with its trailing "\r\n".
struct Item {
  uint64_t cas;      // on a free chunk: offset of the next free chunk
  uint32_t nbytes;   // value length including "\r\n"
  uint32_t flags;    // client flags
  uint32_t exptime;  // absolute unix seconds, 0 = never
  uint32_t time;     // unix seconds of the last store or modification (flush_all uses it)
  uint32_t atime;    // unix seconds of the last access, refreshed at most once a minute
  uint32_t checksum; // xxh32 over key, value and flags, for crash validation
  std::atomic<uint8_t> state;
  uint8_t nkey;
  uint8_t clsid;
  uint8_t reserved;
  uint32_t epoch;    // crash epoch in which the checksum was last known good

  static constexpr uint8_t kLinked = 1;    // reachable from the index
  static constexpr uint8_t kAccessed = 2;  // CLOCK reference bit
  static constexpr uint8_t kFetched = 4;   // read at least once since stored
  static constexpr uint8_t kFree = 8;      // on a free list
  // Meta protocol state (store_meta.cc), set and cleared only under the item's bucket lock:
  static constexpr uint8_t kStale = 16;      // invalidated by md I / ms I: served, marked X
  static constexpr uint8_t kWinSent = 32;    // one client was told to recache it (W); others Z
  static constexpr uint8_t kKeyBinary = 64;  // key came base64-encoded (ms b): echoed encoded

  char* key() { return reinterpret_cast<char*>(this + 1); }
  const char* key() const { return reinterpret_cast<const char*>(this + 1); }
  char* value() { return key() + nkey; }
  const char* value() const { return key() + nkey; }
  size_t total() const { return sizeof(Item) + nkey + nbytes; }
};
static_assert(sizeof(Item) == 40, "item header is part of the arena layout");
static_assert(alignof(Item) == 8);

inline size_t item_total(size_t nkey, size_t value_len) { return sizeof(Item) + nkey + value_len + 2; }

// One slab class: chunk geometry, free list, CLOCK hand and its share of pages.
struct alignas(kCacheLine) ClassState {
  uint32_t chunk_size;
  uint32_t chunks_per_page;
  SpinLock lock;
  uint32_t n_pages;
  uint64_t free_head;   // offset of the first free chunk, 0 = none
  uint64_t free_count;
  uint32_t first_page;  // page index of the class's first page (pages chain through PageInfo)
  uint32_t last_page;
  uint32_t carve_page;  // page still being carved (lazy: chunks handed out in order)
  uint32_t carve_next;  // next chunk index in carve_page; == chunks_per_page when done
  uint32_t hand_page;   // CLOCK hand: page and chunk
  uint32_t hand_chunk;
  std::atomic<uint64_t> number;         // linked items
  std::atomic<uint64_t> mem_requested;  // bytes of linked items (header + key + value)
};
static_assert(sizeof(ClassState) == 128);

struct PageInfo {
  uint32_t clsid;  // 0 = not given to a class
  uint32_t next;   // next page of the same class, kNoPage at the end
  uint32_t used;   // chunks handed out and not freed (linked or in flight)
  uint32_t given_ms;  // low 32 bits of the unix time in ms when the class got the page
};
static_assert(sizeof(PageInfo) == 16);
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
  uint64_t created_unix;
  std::atomic<uint64_t> cas_counter;
  std::atomic<uint32_t> pages_given;  // pages handed to classes so far (in order)
  std::atomic<uint32_t> oldest_live;  // flush_all with delay: items with time <= this are gone
  std::atomic<uint64_t> oldest_cas;   // flush_all now: items with cas <= this are gone
  std::atomic<uint32_t> attached;     // 1 while a process is attached (crash detection)
  std::atomic<uint32_t> epoch;        // bumped by every attach after an unclean detach
  SpinLock page_lock;
};

}  // namespace cachet::store
