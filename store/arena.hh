// The shared-memory arena: a file on hugetlbfs or /dev/shm (mode 0600), or a private memfd,
// mapped whole. Knows the header's geometry; the slab allocator and the index carve it up.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "store/layout.hh"

namespace cachet::store {

// Sizes of every region, derived from the store's options. Equal options give equal geometry.
struct Geometry {
  uint64_t page_size;
  uint32_t n_pages;
  uint32_t n_classes;
  uint32_t class_size[kMaxClasses];  // index = class id; [0] unused
  uint64_t max_buckets;
  uint32_t min_level;
  uint32_t overflow_max;
  uint32_t wheel_blocks;  // transient wheel blocks (entries for an eighth of the most items)
  uint64_t off_classes, off_pages, off_index, off_buckets, off_overflow, off_wheel,
      off_wheel_blocks, off_items;
  uint64_t arena_bytes;

  // Computes the geometry; returns false with *error naming the option that is out of range.
  static bool compute(uint64_t memory_bytes, uint32_t item_size_max, uint32_t chunk_min,
                      double growth_factor, Geometry* out, std::string* error);
};

class Arena {
 public:
  // Opens the arena at `name`: "" = private memfd; a name without '/' lives on a mounted
  // hugetlbfs with enough free pages, else in /dev/shm; a path is used as it is.
  // created() tells whether the arena was made new (false: an existing one was attached).
  static std::unique_ptr<Arena> open(const std::string& name, const Geometry& g,
                                     uint32_t chunk_min, uint32_t item_size_max,
                                     double growth_factor, bool discard_incompatible,
                                     std::string* error);
  ~Arena();

  // Whether open() would attach (or create) the arena at `name` with this geometry, without
  // mapping or locking it: false with *error saying why it would be refused.
  static bool probe(const std::string& name, const Geometry& g, uint32_t chunk_min,
                    uint32_t item_size_max, double growth_factor, std::string* error);

  char* base() const { return base_; }
  ArenaHeader* header() const { return reinterpret_cast<ArenaHeader*>(base_); }
  bool created() const { return created_; }
  const std::string& path() const { return path_; }

  // Whether this process still holds the arena's lock (named arenas; a private one: always).
  bool locked() const { return locked_; }
  // Drops the lock so another process may attach; the mapping stays until destruction.
  void unlock();
  // Empties an attached arena in place: the file is cut to nothing and grown back, so the
  // mapping reads as a new arena's (created() becomes true). For an arena the caller may
  // discard (--shm-discard) whose tables are damaged. False with *error when the file cannot.
  bool discard(std::string* error);

  template <class T>
  T* at(uint64_t off) const { return reinterpret_cast<T*>(base_ + off); }
  uint64_t offset_of(const void* p) const { return static_cast<const char*>(p) - base_; }

 private:
  Arena() = default;
  char* base_ = nullptr;
  size_t mapped_ = 0;
  int fd_ = -1;
  bool created_ = false;
  bool locked_ = true;
  std::string path_;
};

// Where a named arena would live right now (hugetlbfs mount or /dev/shm), for messages and tools.
std::string resolve_arena_path(const std::string& name, uint64_t bytes);

}  // namespace cachet::store
