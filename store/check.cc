// The store's consistency checks, reading the layout directly (store/layout.hh) and changing
// nothing: check_tables, the O(pages + classes) part that every attach runs before it trusts
// an arena (header, class table, page chains, index header), and Store::check, a walk over
// the whole arena (free lists, index, every linked item) that tests and fuzz targets run.
#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "common/hash.hh"
#include "store/counters.hh"
#include "store/store.hh"

namespace cachet::store {
namespace {

constexpr size_t kMaxLines = 32;  // problems listed in the report; the rest are counted

// What the walk learnt about one chunk.
enum Mark : uint8_t { kOnFreeList = 1, kInIndex = 2 };

class Checker {
 public:
  // quiet: no thread or process uses the arena, so no lock may be held either.
  Checker(const Arena& arena, const Geometry& g, bool quiet) : a_(arena), g_(g), quiet_(quiet) {}

  template <class... Args>
  void bad(fmt::format_string<Args...> f, Args&&... args) {
    if (++problems_ <= kMaxLines) out_ += fmt::format(f, std::forward<Args>(args)...) + "\n";
  }

  // The tables an attach must be able to trust: header, classes, page chains, index header.
  bool tables();
  // tables(), then the free lists, the index and every chunk.
  bool run(const Index& index);
  std::string report() const {
    return problems_ <= kMaxLines ? out_
                                  : out_ + fmt::format("... {} more\n", problems_ - kMaxLines);
  }
  bool ok() const { return problems_ == 0; }

 private:
  const ArenaHeader& hdr() const { return *a_.header(); }
  const ClassState& cls(unsigned c) const { return a_.at<ClassState>(g_.off_classes)[c]; }
  const PageInfo& page(uint32_t p) const { return a_.at<PageInfo>(g_.off_pages)[p]; }
  const Bucket* bucket(uint64_t i) const { return a_.at<Bucket>(g_.off_buckets) + i; }
  uint32_t carved(uint32_t p) const {
    return std::min(page(p).carved, cls(page(p).clsid).chunks_per_page);
  }
  const WheelHeader& wheel() const { return *a_.at<WheelHeader>(g_.off_wheel); }
  const WheelList& wheel_list(uint32_t i) const {
    return reinterpret_cast<const WheelList*>(a_.at<char>(g_.off_wheel) + sizeof(WheelHeader))[i];
  }
  const WheelBlock& wheel_block(uint32_t one_based) const {
    return a_.at<WheelBlock>(g_.off_wheel_blocks)[one_based - 1];
  }
  // The page and chunk index of an item offset, when it is the start of a carved chunk of a
  // page that belongs to a class; false (with a problem reported as `what`) otherwise.
  bool locate(uint64_t off, const char* what, uint32_t* p, uint32_t* k);

  void check_header();
  void check_pages();
  void check_index_header();
  void check_wheel_header();
  void check_free_lists();
  void check_wheel();
  void check_index(const Index& index);
  void check_item(uint64_t slot, uint64_t bucket_no, const Index& index);
  void check_chunks();

  const Arena& a_;
  const Geometry& g_;
  const bool quiet_;
  size_t problems_ = 0;
  std::string out_;
  std::vector<std::vector<uint8_t>> marks_;  // [page][chunk]
  std::vector<uint64_t> linked_, bytes_;     // per class, from the index walk
  std::unordered_set<std::string> keys_;
  uint64_t linked_total_ = 0;
};

bool Checker::locate(uint64_t off, const char* what, uint32_t* p, uint32_t* k) {
  const uint64_t end = g_.off_items + uint64_t{g_.n_pages} * g_.page_size;
  if (off < g_.off_items || off >= end) {
    bad("{} {:#x} is outside the item pages", what, off);
    return false;
  }
  *p = static_cast<uint32_t>((off - g_.off_items) / g_.page_size);
  const unsigned c = page(*p).clsid;
  if (c == 0 || c > g_.n_classes) {
    bad("{} {:#x} is in page {}, which no class owns", what, off, *p);
    return false;
  }
  const uint64_t in_page = off - g_.off_items - uint64_t{*p} * g_.page_size;
  if (in_page % cls(c).chunk_size != 0) {
    bad("{} {:#x} is not at a chunk boundary of class {}", what, off, c);
    return false;
  }
  *k = static_cast<uint32_t>(in_page / cls(c).chunk_size);
  if (*k >= carved(*p)) {
    bad("{} {:#x} is chunk {} of page {}, which was never carved", what, off, *k, *p);
    return false;
  }
  return true;
}

void Checker::check_header() {
  const ArenaHeader& h = hdr();
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) bad("header: bad magic");
  if (h.layout_version != kLayoutVersion) bad("header: layout version {}", h.layout_version);
  if (h.arena_bytes != g_.arena_bytes || h.n_pages != g_.n_pages ||
      h.page_size != g_.page_size || h.n_classes != g_.n_classes ||
      h.off_items != g_.off_items || h.off_buckets != g_.off_buckets)
    bad("header: geometry differs from the options");
  if (h.pages_given.load() > g_.n_pages)
    bad("header: {} pages given of {}", h.pages_given.load(), g_.n_pages);
  if (quiet_ && h.page_lock.word.load() != 0) bad("header: page lock held");
}

void Checker::check_pages() {
  const uint32_t given = hdr().pages_given.load();
  std::vector<unsigned> owner(g_.n_pages, 0);
  for (unsigned c = 1; c <= g_.n_classes; ++c) {
    const ClassState& s = cls(c);
    if (s.chunk_size != g_.class_size[c] || s.chunks_per_page != g_.page_size / g_.class_size[c])
      bad("class {}: chunk size {} x {} per page, expected {}", c, s.chunk_size,
          s.chunks_per_page, g_.class_size[c]);
    if (quiet_ && s.lock.word.load() != 0) bad("class {}: lock held", c);
    uint32_t n = 0, last = kNoPage;
    bool has_carve = s.carve_page == kNoPage, has_hand = s.hand_page == kNoPage;
    for (uint32_t p = s.first_page; p != kNoPage; p = page(p).next) {
      if (p >= g_.n_pages || owner[p] != 0 || n > g_.n_pages) {
        bad("class {}: page chain broken at page {}", c, p);
        break;
      }
      owner[p] = c;
      if (page(p).clsid != c) bad("class {}: page {} in its chain says class {}", c, p, page(p).clsid);
      has_carve |= p == s.carve_page;
      has_hand |= p == s.hand_page;
      last = p;
      ++n;
    }
    if (n != s.n_pages) bad("class {}: {} pages chained, {} counted", c, n, s.n_pages);
    if (last != s.last_page) bad("class {}: last page {}, chain ends at {}", c, s.last_page, last);
    if (!has_carve) bad("class {}: carve page {} is not one of its pages", c, s.carve_page);
    if (!has_hand) bad("class {}: CLOCK hand page {} is not one of its pages", c, s.hand_page);
    // The pages waiting to be carved (the first of them being carved) are its own, once each.
    n = 0;
    for (uint32_t p = s.carve_page; p != kNoPage; p = page(p).carve_next) {
      if (p >= g_.n_pages || owner[p] != c || ++n > s.n_pages) {
        bad("class {}: carving queue broken at page {}", c, p);
        break;
      }
    }
    if (s.hand_page != kNoPage && s.hand_chunk >= s.chunks_per_page)
      bad("class {}: CLOCK hand at chunk {} of {}", c, s.hand_chunk, s.chunks_per_page);
  }
  const uint32_t moving = hdr().move_page.load();
  if (moving != kNoPage && (moving >= g_.n_pages || page(moving).clsid == 0))
    bad("header: page {} being moved is no class's page", moving);
  for (uint32_t p = 0; p < g_.n_pages; ++p) {
    const PageInfo& pi = page(p);
    if (pi.clsid != 0 && owner[p] == 0)
      bad("page {}: says class {} but is in no class's chain", p, pi.clsid);
    if (p >= given && pi.clsid != 0) bad("page {}: owned but not given out yet", p);
    if (pi.clsid == 0) continue;
    if (pi.clsid > g_.n_classes) {  // in no class's chain (reported above)
      bad("page {}: class {} does not exist", p, pi.clsid);
      continue;
    }
    const ClassState& s = cls(pi.clsid);
    if (pi.carved > s.chunks_per_page || pi.used > pi.carved || pi.free_count > pi.carved ||
        pi.free_head > pi.carved)
      bad("page {}: {} carved, {} used, {} free (head {}) of {} chunks", p, pi.carved, pi.used,
          pi.free_count, pi.free_head, s.chunks_per_page);
    // Only the page the mover is draining is marked so (none when a quiet arena is checked:
    // a stopped engine gives its page back).
    if ((pi.flags & PageInfo::kDraining) && (quiet_ || p != moving))
      bad("page {}: marked draining, the mover drains {}", p, moving);
  }
}

void Checker::check_wheel_header() {
  const WheelHeader& w = wheel();
  if (w.n_blocks != g_.wheel_blocks || w.pool_used > w.n_blocks || w.pool_free > w.pool_used ||
      w.blocks_in_use.load() > w.pool_used)
    bad("transient wheel: {} blocks, {} used, {} in use, free list at {}", w.n_blocks,
        w.pool_used, w.blocks_in_use.load(), w.pool_free);
  if (quiet_ && w.pool_lock.word.load() != 0) bad("transient wheel: pool lock held");
}

void Checker::check_index_header() {
  const IndexHeader& ih = *a_.at<IndexHeader>(g_.off_index);
  const uint64_t shape = ih.shape.load();
  const uint64_t level = shape >> 32, split = shape & 0xffffffffu;
  if (ih.max_buckets != g_.max_buckets || ih.overflow_max != g_.overflow_max ||
      ih.min_level != g_.min_level)
    bad("index header: geometry differs from the options");
  if (level < g_.min_level || level >= 40 || split >= (uint64_t{1} << level) ||
      (uint64_t{1} << level) + split > g_.max_buckets)
    bad("index header: level {} split {} with {} buckets", level, split, g_.max_buckets);
  if (ih.overflow_used > g_.overflow_max || ih.overflow_free > ih.overflow_used)
    bad("index header: overflow pool {} used, free list at {}, of {}", ih.overflow_used,
        ih.overflow_free, g_.overflow_max);
  if (quiet_ && (ih.grow_lock.word.load() != 0 || ih.overflow_lock.word.load() != 0))
    bad("index: a lock is held");
}

void Checker::check_free_lists() {
  // Each page lists its free chunks (chunk index + 1 in Item::cas); each class lists the pages
  // that have some, except the page being drained.
  std::vector<uint64_t> free_in(g_.n_classes + 1, 0);
  for (uint32_t p = 0; p < g_.n_pages; ++p) {
    const PageInfo& pi = page(p);
    if (pi.clsid == 0) continue;
    const ClassState& c = cls(pi.clsid);
    const char* base = a_.at<char>(g_.off_items + uint64_t{p} * g_.page_size);
    uint32_t n = 0;
    for (uint64_t k1 = pi.free_head; k1 != 0;) {
      if (k1 > carved(p) || n > carved(p)) {
        bad("page {}: free list reaches chunk index {} of {} carved", p, k1, carved(p));
        break;
      }
      const uint32_t k = static_cast<uint32_t>(k1 - 1);
      if (marks_[p][k] & kOnFreeList) {
        bad("page {}: free list loops at chunk {}", p, k);
        break;
      }
      marks_[p][k] |= kOnFreeList;
      const Item* it = reinterpret_cast<const Item*>(base + uint64_t{k} * c.chunk_size);
      if (it->state.load() != Item::kFree)
        bad("page {}: free chunk {} has state {:#x}", p, k, it->state.load());
      ++n;
      k1 = it->cas;
    }
    if (n != pi.free_count) bad("page {}: {} chunks on its free list, {} counted", p, n, pi.free_count);
    free_in[pi.clsid] += n;
    const bool listable = pi.free_count > 0 && !(pi.flags & PageInfo::kDraining);
    if (listable != bool(pi.flags & PageInfo::kListed))
      bad("page {}: {} free chunks, flags {:#x}", p, pi.free_count, pi.flags);
  }
  for (unsigned c = 1; c <= g_.n_classes; ++c) {
    const ClassState& s = cls(c);
    if (free_in[c] != s.free_count)
      bad("class {}: {} chunks on the free lists of its pages, {} counted", c, free_in[c],
          s.free_count);
    uint32_t n = 0, prev = kNoPage;
    for (uint32_t p = s.free_pages; p != kNoPage; prev = p, p = page(p).free_next) {
      if (p >= g_.n_pages || page(p).clsid != c || !(page(p).flags & PageInfo::kListed) ||
          page(p).free_prev != prev || ++n > s.n_pages) {
        bad("class {}: list of pages with free chunks broken at page {}", c, p);
        break;
      }
    }
  }
}

void Checker::check_wheel() {
  // Entries may be stale (the reaper frees only what it finds linked and expired under the
  // key's bucket lock; a moved page may cut chunks differently now), but each must lie in the
  // item pages, and the blocks must add up.
  const WheelHeader& w = wheel();
  std::vector<uint8_t> seen(w.pool_used + 1, 0);
  uint64_t entries = 0, blocks = 0;
  for (uint32_t i = 0; i < kWheelSeconds * kWheelLanes; ++i) {
    const WheelList& l = wheel_list(i);
    if (quiet_ && l.lock.word.load() != 0) bad("transient wheel: list {} locked", i);
    uint32_t n = 0, last = 0;
    for (uint32_t b = l.head; b != 0; last = b, b = wheel_block(b).next) {
      if (b > w.pool_used || seen[b]) {
        bad("transient wheel: list {} reaches block {} (out of range or shared)", i, b);
        break;
      }
      seen[b] = 1;
      ++blocks;
      const WheelBlock& blk = wheel_block(b);
      if (blk.n > WheelBlock::kEntries) {
        bad("transient wheel: block {} holds {} entries", b, blk.n);
        break;
      }
      const uint64_t end = g_.off_items + uint64_t{g_.n_pages} * g_.page_size;
      for (uint32_t e = 0; e < blk.n; ++e)
        if (blk.off[e] < g_.off_items || blk.off[e] + sizeof(Item) > end)
          bad("transient wheel: entry {:#x} is outside the item pages", blk.off[e]);
      n += blk.n;
    }
    if (last != l.tail) bad("transient wheel: list {} ends at block {}, tail {}", i, last, l.tail);
    if (n != l.count) bad("transient wheel: list {} holds {} entries, {} counted", i, n, l.count);
    entries += n;
  }
  if (entries != w.entries.load())
    bad("transient wheel: {} entries listed, {} counted", entries, w.entries.load());
  if (blocks != w.blocks_in_use.load())
    bad("transient wheel: {} blocks listed, {} in use", blocks, w.blocks_in_use.load());
}

void Checker::check_item(uint64_t slot, uint64_t bucket_no, const Index& index) {
  const uint64_t off = slot_offset(slot);
  uint32_t p, k;
  if (!locate(off, "index slot", &p, &k)) return;
  const Item* it = a_.at<Item>(off);
  const unsigned c = page(p).clsid;
  if (marks_[p][k] & kInIndex) {
    bad("item {:#x} is in the index twice", off);
    return;
  }
  marks_[p][k] |= kInIndex;
  const uint8_t st = it->state.load();
  if (!(st & Item::kLinked) || (st & Item::kFree))
    bad("item {:#x} in the index has state {:#x}", off, st);
  if (it->clsid != c) bad("item {:#x} says class {} in a page of class {}", off, it->clsid, c);
  if (it->nkey == 0 || it->nkey > kKeyMax || it->nbytes < 2 ||
      it->total() > cls(c).chunk_size) {
    bad("item {:#x}: key {} bytes, value {} bytes in a {}-byte chunk", off, it->nkey,
        it->nbytes, cls(c).chunk_size);
    return;
  }
  const std::string_view key(it->key(), it->nkey);
  if (std::memcmp(it->value() + it->nbytes - 2, "\r\n", 2) != 0)
    bad("item {:#x}: value does not end in CRLF", off);
  if (item_checksum(it) != it->checksum) bad("item {:#x}: checksum mismatch", off);
  const uint64_t h = common::hash_key(key);
  if (index.bucket_hint(h) != bucket(bucket_no))
    bad("item {:#x}: its key hashes to another bucket than {}", off, bucket_no);
  if (slot_tag(slot) != Index::tag_of(h)) bad("item {:#x}: slot tag does not match its key", off);
  if (!keys_.emplace(key).second) bad("item {:#x}: a second item with the same key", off);
  ++linked_[c];
  bytes_[c] += it->total();
  ++linked_total_;
}

void Checker::check_index(const Index& index) {
  const IndexHeader& ih = *a_.at<IndexHeader>(g_.off_index);
  const uint64_t n = index.buckets_in_use();
  const Bucket* overflow = a_.at<Bucket>(g_.off_overflow);
  std::vector<uint8_t> chained(ih.overflow_used, 0);
  uint64_t chained_n = 0;
  for (uint64_t i = 0; i < std::min(n, g_.max_buckets); ++i) {
    const Bucket* b = bucket(i);
    if (b->version.load() & 1) bad("bucket {}: locked", i);
    for (;;) {
      for (const auto& s : b->slot) {
        const uint64_t v = s.load();
        if (v) check_item(v, i, index);
      }
      const uint32_t o = b->overflow;
      if (o == 0) break;
      if (o > ih.overflow_used || chained[o - 1]) {
        bad("bucket {}: overflow link {} is out of range or shared", i, o);
        break;
      }
      chained[o - 1] = 1;
      ++chained_n;
      b = overflow + (o - 1);
    }
  }
  if (ih.items.load() != linked_total_)
    bad("index: {} items counted, {} linked", ih.items.load(), linked_total_);
  uint64_t free_n = 0;
  for (uint32_t o = ih.overflow_free; o != 0; o = overflow[o - 1].overflow) {
    if (o > ih.overflow_used || chained[o - 1]) {
      bad("overflow free list: bucket {} is out of range, chained or looped", o);
      break;
    }
    chained[o - 1] = 2;
    ++free_n;
  }
  if (ih.overflow_in_use.load() != chained_n)
    bad("overflow: {} buckets chained, {} counted", chained_n, ih.overflow_in_use.load());
  if (chained_n + free_n != ih.overflow_used)
    bad("overflow: {} chained + {} free != {} used", chained_n, free_n, ih.overflow_used);
}

void Checker::check_chunks() {
  for (unsigned c = 1; c <= g_.n_classes; ++c) {
    if (cls(c).number.load() != linked_[c])
      bad("class {}: {} items counted, {} linked", c, cls(c).number.load(), linked_[c]);
    if (cls(c).mem_requested.load() != bytes_[c])
      bad("class {}: {} bytes counted, {} linked", c, cls(c).mem_requested.load(), bytes_[c]);
  }
  for (uint32_t p = 0; p < g_.n_pages; ++p) {
    if (marks_[p].empty()) continue;
    const ClassState& c = cls(page(p).clsid);
    const uint32_t n = std::min<uint32_t>(carved(p), static_cast<uint32_t>(marks_[p].size()));
    const char* base = a_.at<char>(g_.off_items + uint64_t{p} * g_.page_size);
    uint32_t used = 0;
    for (uint32_t k = 0; k < n; ++k) {
      const Item* it = reinterpret_cast<const Item*>(base + uint64_t{k} * c.chunk_size);
      const uint8_t m = marks_[p][k];
      if (m == (kOnFreeList | kInIndex)) bad("chunk {} of page {}: both free and linked", k, p);
      if (m == 0) bad("chunk {} of page {}: neither free nor linked (state {:#x})", k, p,
                      it->state.load());
      if (m == 0 && (it->state.load() & (Item::kLinked | Item::kFree)))
        bad("chunk {} of page {}: state {:#x} but not reachable", k, p, it->state.load());
      used += !(m & kOnFreeList);
    }
    if (page(p).used != used) bad("page {}: {} chunks used, {} counted", p, used, page(p).used);
  }
}

bool Checker::tables() {
  check_header();
  if (ok()) check_pages();  // the header's geometry is what the page walk relies on
  check_index_header();
  check_wheel_header();
  return ok();
}

bool Checker::run(const Index& index) {
  linked_.assign(g_.n_classes + 1, 0);
  bytes_.assign(g_.n_classes + 1, 0);
  if (!tables()) return false;  // nothing past damaged tables can be walked safely
  marks_.resize(g_.n_pages);
  for (uint32_t p = 0; p < g_.n_pages; ++p)
    if (page(p).clsid) marks_[p].assign(cls(page(p).clsid).chunks_per_page, 0);
  check_free_lists();
  check_index(index);
  check_chunks();
  check_wheel();
  return ok();
}

}  // namespace

bool check_tables(const Arena& arena, const Geometry& g, std::string* why) {
  Checker c(arena, g, false);
  if (c.tables()) return true;
  *why = c.report();
  why->erase(why->find('\n'));  // the first problem names the damage
  return false;
}

bool Store::check(std::string* report) const {
  Checker c(*arena_, geo_, true);
  c.run(index_);
  if (report) *report += c.report();
  return c.ok();
}

}  // namespace cachet::store
