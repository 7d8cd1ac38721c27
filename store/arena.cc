// Arena creation and attachment: geometry, placement (hugetlbfs or /dev/shm), header checks.
#include "store/arena.hh"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "common/log.hh"

namespace cachet::store {
namespace {

constexpr uint64_t kHuge = 2ull << 20;
constexpr uint32_t kHugetlbfsMagic = 0x958458f6;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// The first mounted hugetlbfs with 2 MB pages and room for `bytes`, or "".
std::string hugetlbfs_dir(uint64_t bytes) {
  std::ifstream mounts("/proc/mounts");
  std::string dev, dir, type, rest;
  while (mounts >> dev >> dir >> type && std::getline(mounts, rest)) {
    if (type != "hugetlbfs") continue;
    struct statfs sf {};
    if (statfs(dir.c_str(), &sf) != 0 || static_cast<uint32_t>(sf.f_type) != kHugetlbfsMagic)
      continue;
    if (static_cast<uint64_t>(sf.f_bsize) != kHuge) continue;
    if (static_cast<uint64_t>(sf.f_bavail) * sf.f_bsize >= bytes) return dir;
  }
  return "";
}

// Why an existing arena file cannot be attached with this geometry, or "" when it can.
std::string header_mismatch(int fd, uint64_t file_size, const Geometry& g, uint32_t chunk_min,
                            uint32_t item_size_max, double growth_factor) {
  ArenaHeader h{};
  bool readable = file_size >= sizeof(h) &&
                  pread(fd, &h, sizeof(h), 0) == static_cast<ssize_t>(sizeof(h));
  if (!readable || std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0)
    return "it is not a Cachet arena (bad magic)";
  if (h.layout_version != kLayoutVersion)
    return fmt::format("its layout version is {}, this build reads version {}",
                       h.layout_version, kLayoutVersion);
  if (h.arena_bytes != g.arena_bytes || h.n_pages != g.n_pages || h.page_size != g.page_size ||
      h.chunk_min != chunk_min || h.item_size_max != item_size_max ||
      h.growth_factor != growth_factor)
    return fmt::format(
        "it was made with {} MB of item memory, -I {}, -n {}, -f {}; this start asks for "
        "{} MB, -I {}, -n {}, -f {}",
        h.n_pages * h.page_size >> 20, h.item_size_max, h.chunk_min, h.growth_factor,
        uint64_t{g.n_pages} * g.page_size >> 20, item_size_max, chunk_min, growth_factor);
  return "";
}

}  // namespace

bool Arena::probe(const std::string& name, const Geometry& g, uint32_t chunk_min,
                  uint32_t item_size_max, double growth_factor, std::string* error) {
  std::string path = resolve_arena_path(name, g.arena_bytes);
  if (path.empty()) return true;  // private: nothing to keep
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // none yet: it will be made
  struct stat st {};
  fstat(fd, &st);
  std::string why = st.st_size == 0 ? "" : header_mismatch(fd, static_cast<uint64_t>(st.st_size),
                                                           g, chunk_min, item_size_max,
                                                           growth_factor);
  ::close(fd);
  if (why.empty()) return true;
  *error = fmt::format("arena {} cannot be kept: {}", path, why);
  return false;
}

std::string resolve_arena_path(const std::string& name, uint64_t bytes) {
  if (name.empty() || name.find('/') != std::string::npos) return name;
  std::string dir = hugetlbfs_dir(bytes);
  return (dir.empty() ? std::string("/dev/shm") : dir) + "/" + name;
}

bool Geometry::compute(uint64_t memory_bytes, uint32_t item_size_max, uint32_t chunk_min,
                       double growth_factor, Geometry* g, std::string* error) {
  if (growth_factor <= 1.0 || growth_factor > 2.0) {
    *error = fmt::format("growth factor (-f) must be above 1.0 and at most 2.0, got {}",
                         growth_factor);
    return false;
  }
  if (chunk_min < 48 || chunk_min > 1024) {
    *error = fmt::format("chunk minimum (-n) must be between 48 and 1024 bytes, got {}",
                         chunk_min);
    return false;
  }
  if (item_size_max < 1024 || item_size_max > (1u << 30)) {
    *error = fmt::format("item size maximum (-I) must be between 1 KB and 1 GB, got {}",
                         item_size_max);
    return false;
  }
  g->page_size = std::max<uint64_t>(1u << 20, align_up(item_size_max, 8));
  uint64_t pages = memory_bytes / g->page_size;
  if (pages < 1 || pages > 0xfffffff0u) {
    *error = fmt::format("item memory (-m) must hold at least one {} byte page", g->page_size);
    return false;
  }
  g->n_pages = static_cast<uint32_t>(pages);

  // Classes: chunk_min growing by growth_factor, 8-byte aligned, the last one a whole page.
  uint32_t n = 0;
  double size = chunk_min;
  while (n + 2 < kMaxClasses && size < static_cast<double>(g->page_size) / growth_factor) {
    uint32_t s = static_cast<uint32_t>(align_up(static_cast<uint64_t>(size), 8));
    if (n == 0 || s > g->class_size[n]) g->class_size[++n] = s;
    size *= growth_factor;
  }
  g->class_size[++n] = static_cast<uint32_t>(g->page_size);
  g->n_classes = n;

  // Index: room for every item at 4 per bucket on average at the smallest chunk, grown to by
  // linear hashing from min_level; the directory is sparse until touched.
  uint64_t max_items = pages * g->page_size / chunk_min;
  uint64_t buckets = 1024;
  while (buckets < max_items / 4) buckets <<= 1;
  g->max_buckets = buckets;
  g->min_level = 10;
  g->overflow_max = static_cast<uint32_t>(std::min<uint64_t>(buckets / 8, 0x7fffffffu));

  uint64_t off = kHeaderBytes;
  g->off_classes = off;
  off += sizeof(ClassState) * kMaxClasses;
  g->off_pages = off;
  off = align_up(off + sizeof(PageInfo) * pages, kCacheLine);
  g->off_index = off;
  off += sizeof(IndexHeader);
  g->off_buckets = off;
  off += sizeof(Bucket) * buckets;
  g->off_overflow = off;
  off += sizeof(Bucket) * g->overflow_max;
  // Transient wheel: room for an eighth of the most items the memory could hold, plus a
  // partly filled block per list; beyond that, short-lived items are left to the sweeps.
  const uint64_t wheel_entries = max_items / 8;
  g->wheel_blocks = static_cast<uint32_t>(
      std::min<uint64_t>(wheel_entries / WheelBlock::kEntries + 256, 0x7fffffffu));
  g->off_wheel = align_up(off, kCacheLine);
  off = g->off_wheel + sizeof(WheelHeader) + sizeof(WheelList) * kWheelSeconds * kWheelLanes;
  g->off_wheel_blocks = align_up(off, kWheelBlockBytes);
  off = g->off_wheel_blocks + uint64_t{g->wheel_blocks} * kWheelBlockBytes;
  g->off_items = align_up(off, kHuge);
  g->arena_bytes = align_up(g->off_items + pages * g->page_size + kGuardBytes, kHuge);
  return true;
}

std::unique_ptr<Arena> Arena::open(const std::string& name, const Geometry& g,
                                   uint32_t chunk_min, uint32_t item_size_max,
                                   double growth_factor, bool discard_incompatible,
                                   std::string* error) {
  std::unique_ptr<Arena> a(new Arena());
  a->path_ = resolve_arena_path(name, g.arena_bytes);
  if (a->path_.empty()) {
    a->fd_ = memfd_create("cachet-arena", MFD_CLOEXEC);
  } else {
    a->fd_ = ::open(a->path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  }
  if (a->fd_ < 0) {
    *error = fmt::format("cannot open arena {}: {}", a->path_.empty() ? "(memfd)" : a->path_,
                         strerror(errno));
    return nullptr;
  }
  // One process at a time: a second one would break the first one's locks on attach.
  if (!a->path_.empty() && flock(a->fd_, LOCK_EX | LOCK_NB) != 0) {
    *error = fmt::format("arena {} is in use by another process", a->path_);
    return nullptr;
  }
  struct stat st {};
  fstat(a->fd_, &st);
  if (!a->path_.empty() && (st.st_mode & 0077) != 0) fchmod(a->fd_, 0600);
  bool fresh = st.st_size == 0;
  if (!fresh) {
    // Read the existing header before deciding anything.
    std::string why = header_mismatch(a->fd_, static_cast<uint64_t>(st.st_size), g, chunk_min,
                                      item_size_max, growth_factor);
    if (!why.empty()) {
      if (!discard_incompatible) {
        *error = fmt::format(
            "refusing arena {}: {}. Start with the settings it was made with to keep the "
            "cache, or pass --shm-discard to drop it",
            a->path_, why);
        return nullptr;
      }
      common::log::warn("discarding arena {}: {}", a->path_, why);
      if (ftruncate(a->fd_, 0) != 0) {
        *error = fmt::format("cannot discard arena {}: {}", a->path_, strerror(errno));
        return nullptr;
      }
      fresh = true;
    }
  }
  if (fresh) {
    int rc = ftruncate(a->fd_, static_cast<off_t>(g.arena_bytes));
    if (rc != 0) {
      *error = fmt::format("cannot size arena {} to {} bytes: {}", a->path_, g.arena_bytes,
                           strerror(errno));
      return nullptr;
    }
  }
  void* p = mmap(nullptr, g.arena_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                 a->fd_, 0);
  if (p == MAP_FAILED) {
    *error = fmt::format("cannot map arena {} ({} bytes): {}", a->path_, g.arena_bytes,
                         strerror(errno));
    return nullptr;
  }
  a->base_ = static_cast<char*>(p);
  a->mapped_ = g.arena_bytes;
  a->created_ = fresh;
  return a;
}

bool Arena::discard(std::string* error) {
  if (ftruncate(fd_, 0) != 0 || ftruncate(fd_, static_cast<off_t>(mapped_)) != 0) {
    *error = fmt::format("cannot discard arena {}: {}", path_, strerror(errno));
    return false;
  }
  created_ = true;
  return true;
}

void Arena::unlock() {
  if (!path_.empty() && fd_ >= 0) flock(fd_, LOCK_UN);
  locked_ = false;
}

Arena::~Arena() {
  if (base_) munmap(base_, mapped_);
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace cachet::store
