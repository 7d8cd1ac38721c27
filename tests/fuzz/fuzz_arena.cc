// Fuzz target: attaching a damaged arena. A named arena (-m 4, -I 4k) is filled once (small and
// medium items in two classes of its four pages, some deleted, some incremented) and detached
// cleanly; each input patches its
// file (header, class table, page table, index header, buckets, overflow buckets, item bytes),
// optionally marks it as left by a crashed process, and attaches it. Invariants: the attach
// either refuses with a reason or serves, and then no read, write, eviction or page move
// crashes or hangs, every key the arena held reads back as a miss or exactly its value, no
// deleted key comes back, and a value written after the attach reads back as a miss or exactly
// what was written.
//
// Input: [flags: bit 0 = left attached by a crash] then patches of
//   [region (low 3 bits) and xor (bit 3)][offset: 3 bytes][length - 1: low 4 bits][bytes]
// regions: 0 header, 1 class table, 2 page table, 3 index header, 4 buckets in use,
// 5 overflow buckets, 6 item bytes (the carved chunks), 7 the whole item pages.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/item_rules.hh"
#include "dataplane/stats.hh"
#include "dataplane/tunables.hh"
#include "store/arena.hh"
#include "store/store.hh"
#include "tests/fuzz/harness.hh"

using namespace cachet;
using namespace cachet::store;

namespace {

// memcached's rules over a store (dataplane/item_rules.hh), as the protocols apply them.
struct Rules {
  explicit Rules(Store& s)
      : board(1), tunables(dataplane::TunableValues{}),
        rules(s, s.worker(0), board.worker(0), tunables) {}
  dataplane::StoreResult set(const std::string& k, const std::string& v, uint32_t flags,
                             dataplane::Mode mode = dataplane::Mode::set) {
    return rules.store_item(k, Store::hash(k), v, flags, 0, {.mode = mode}, nullptr);
  }
  void remove(const std::string& k) { rules.delete_item(k, Store::hash(k), {}); }
  void delta(const std::string& k, bool incr, uint64_t by) {
    dataplane::DeltaOut out;
    rules.delta_item(k, Store::hash(k), {.incr = incr, .delta = by}, &out);
  }
  dataplane::StatsBoard board;
  dataplane::Tunables tunables;
  dataplane::ItemRules rules;
};

struct Extent {
  uint64_t off, len;
};

// The arena as made, mapped once, and what each key holds in it.
struct Template {
  Template() {
    opts.memory_mb = 4;
    opts.item_size_max = 4096;
    opts.workers = 1;
    opts.shm = fmt::format("/dev/shm/cachet-fuzz-arena-{}", getpid());
    unlink(opts.shm.c_str());
    std::string err;
    FUZZ_EXPECT(Geometry::compute(opts.memory_mb << 20, opts.item_size_max, opts.chunk_min,
                                   opts.growth_factor, &geo, &err), "geometry: {}", err);
    {
      auto s = Store::open(opts, &err);
      FUZZ_EXPECT(s != nullptr, "cannot make the template arena: {}", err);
      Rules rules(*s);
      // Two classes: all small items fit 64-byte chunks, all medium ones one larger class.
      for (int i = 0; i < 60; ++i)
        put(rules, fmt::format("s{}", i), std::string(3 + i % 15, 'a' + i % 26));
      for (int i = 0; i < 12; ++i) put(rules, fmt::format("m{}", i), std::string(450, 'A' + i));
      for (int i = 0; i < 10; ++i) put(rules, fmt::format("n{}", i), std::to_string(i * 1000));
      for (int i = 0; i < 60; i += 9) {
        rules.remove(fmt::format("s{}", i));
        values[fmt::format("s{}", i)] = std::nullopt;
      }
      rules.delta("n3", true, 5);
      values["n3"] = "3005";
    }  // detached cleanly
    const int fd = open(opts.shm.c_str(), O_RDWR | O_CLOEXEC);
    FUZZ_EXPECT(fd >= 0, "cannot open {}", opts.shm);
    void* p = mmap(nullptr, geo.arena_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    FUZZ_EXPECT(p != MAP_FAILED, "cannot map the arena");
    map = static_cast<char*>(p);
    made.assign(map, geo.arena_bytes);
    extents(&made_buckets, &made_overflow, &made_pages);
    const auto* ih = reinterpret_cast<const IndexHeader*>(map + geo.off_index);
    const uint64_t shape = ih->shape.load();
    regions[0] = {0, sizeof(ArenaHeader)};
    regions[1] = {geo.off_classes, sizeof(ClassState) * (geo.n_classes + 1)};
    regions[2] = {geo.off_pages, sizeof(PageInfo) * geo.n_pages};
    regions[3] = {geo.off_index, sizeof(IndexHeader)};
    regions[4] = {geo.off_buckets,
                  sizeof(Bucket) * ((uint64_t{1} << (shape >> 32)) + (shape & 0xffffffffu))};
    regions[5] = {geo.off_overflow, sizeof(Bucket) * std::max<uint32_t>(ih->overflow_used, 1)};
    regions[7] = {geo.off_items, uint64_t{geo.n_pages} * geo.page_size};
    // The carved chunks of each page given to a class.
    const auto* pages = reinterpret_cast<const PageInfo*>(map + geo.off_pages);
    const auto* classes = reinterpret_cast<const ClassState*>(map + geo.off_classes);
    for (uint32_t p = 0; p < geo.n_pages; ++p) {
      if (pages[p].clsid == 0) continue;
      const ClassState& c = classes[pages[p].clsid];
      const uint32_t n = std::min(pages[p].carved, c.chunks_per_page);
      carved.push_back({geo.off_items + p * geo.page_size, uint64_t{n} * c.chunk_size});
      regions[6].len += carved.back().len;
    }
  }
  ~Template() { unlink(opts.shm.c_str()); }

  // How far the index, the overflow pool and the item pages are in use now (clamped: a refused
  // arena's header may say anything).
  void extents(uint64_t* buckets, uint64_t* overflow, uint64_t* pages) const {
    const auto* ih = reinterpret_cast<const IndexHeader*>(map + geo.off_index);
    const uint64_t shape = ih->shape.load();
    const uint64_t level = std::min<uint64_t>(shape >> 32, 40);
    *buckets = std::min(geo.max_buckets, (uint64_t{1} << level) + (shape & 0xffffffffu));
    *overflow = std::min<uint64_t>(ih->overflow_used, geo.overflow_max);
    *pages = std::min(reinterpret_cast<const ArenaHeader*>(map)->pages_given.load(), geo.n_pages);
  }

  // Puts back what the last input and the store it attached can have changed: the tables,
  // and the buckets, overflow buckets and pages in use then or in the template.
  void restore() const {
    uint64_t buckets, overflow, pages;
    extents(&buckets, &overflow, &pages);
    auto back = [&](uint64_t off, uint64_t len) { std::memcpy(map + off, made.data() + off, len); };
    back(0, geo.off_buckets);
    back(geo.off_buckets, std::max(buckets, made_buckets) * sizeof(Bucket));
    back(geo.off_overflow, std::max(overflow, made_overflow) * sizeof(Bucket));
    back(geo.off_items, std::max(pages, made_pages) * geo.page_size);
  }

  void put(Rules& r, const std::string& k, const std::string& v) {
    FUZZ_EXPECT(r.set(k, v, 7) == dataplane::StoreResult::stored, "template set {}", k);
    values[k] = v;
  }

  // The arena's offset for byte `at` of region r (region 6 runs through the carved chunks).
  uint64_t locate(unsigned r, uint64_t at) const {
    if (r != 6) return regions[r].off + at % regions[r].len;
    at %= regions[6].len;
    for (const Extent& e : carved) {
      if (at < e.len) return e.off + at;
      at -= e.len;
    }
    return geo.off_items;
  }

  Options opts;
  Geometry geo{};
  char* map = nullptr;
  std::string made;
  uint64_t made_buckets = 0, made_overflow = 0, made_pages = 0;
  std::map<std::string, std::optional<std::string>> values;  // nullopt: deleted
  Extent regions[8] = {};
  std::vector<Extent> carved;
};

Template& tmpl() {
  static Template t;
  return t;
}

// A get's outcome: nullopt on a miss.
std::optional<std::string> get(Store& s, Worker& w, const std::string& key) {
  common::ByteBuf out;
  std::string value;
  const bool hit = s.get(w, key, Store::hash(key), out, [&](const ItemView& v) {
    value.assign(v.value);
    return true;
  });
  return hit ? std::optional<std::string>(value) : std::nullopt;
}

void expect_read(Store& s, Worker& w, const std::string& key,
                 const std::optional<std::string>& want, const char* when) {
  const std::optional<std::string> got = get(s, w, key);
  if (!got) return;  // a miss is always allowed: damaged items are dropped
  FUZZ_EXPECT(want.has_value(), "{}: deleted key {} came back as '{}'", when, key,
               fuzz::printable(*got));
  FUZZ_EXPECT(*got == *want, "{}: {} read '{}', it holds '{}'", when, key,
               fuzz::printable(*got), fuzz::printable(*want));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Template& t = tmpl();
  t.restore();
  if (size < 1) return 0;
  if (data[0] & 1) reinterpret_cast<ArenaHeader*>(t.map)->attached.store(1);
  for (size_t pos = 1; pos + 5 <= size;) {
    const unsigned region = data[pos] & 7;
    const bool xor_mode = data[pos] & 8;
    const uint64_t at = uint64_t{data[pos + 1]} | uint64_t{data[pos + 2]} << 8 |
                        uint64_t{data[pos + 3]} << 16;
    const size_t len = std::min<size_t>((data[pos + 4] & 15) + 1, size - pos - 5);
    pos += 5;
    for (size_t i = 0; i < len; ++i) {
      char& b = t.map[t.locate(region, at + i)];
      b = static_cast<char>(xor_mode ? b ^ data[pos + i] : data[pos + i]);
    }
    pos += len;
  }

  std::string err;
  std::unique_ptr<Store> s = Store::open(t.opts, &err);
  if (!s) {
    FUZZ_EXPECT(!err.empty(), "the damaged arena was refused without a reason");
    return 0;
  }
  Worker& w = s->worker(0);
  Rules rules(*s);
  for (const auto& [k, v] : t.values) expect_read(*s, w, k, v, "after the attach");
  // Writes that allocate from both classes in use and from two new ones (the free pages),
  // delete, grow in place and by copy.
  std::map<std::string, std::optional<std::string>> wrote;
  constexpr size_t kSizes[] = {5, 12, 448, 449, 2000, 3900};
  for (int i = 0; i < 12; ++i) {
    const std::string k = fmt::format("new{}", i);
    const std::string v(kSizes[i % 6], 'a' + i);
    if (rules.set(k, v, 1) == dataplane::StoreResult::stored) wrote[k] = v;
  }
  for (int i = 1; i < 60; i += 13) {
    rules.remove(fmt::format("s{}", i));
    wrote[fmt::format("s{}", i)] = std::nullopt;
  }
  rules.set("m3", "++", 0, dataplane::Mode::append);
  rules.delta("n7", true, 99999999);
  rules.delta("n8", false, 1);
  for (const auto& [k, val] : wrote) expect_read(*s, w, k, val, "after the writes");
  for (const auto& [k, val] : t.values)
    if (!wrote.count(k) && k != "m3" && k != "n7" && k != "n8")
      expect_read(*s, w, k, val, "after the writes");
  return 0;
}
