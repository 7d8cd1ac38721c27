// Fuzz harness pieces: the store and Server under test, the stream driver, failure reports.
#include "tests/fuzz/harness.hh"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "store/arena.hh"

#include "tests/fuzz/replies.hh"

namespace cachet::fuzz {

std::string printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) out.push_back(static_cast<char>(c));
    else out += fmt::format("\\x{:02x}", c);
  }
  if (s.size() > 80) out += fmt::format("...({} bytes)", s.size());
  return out;
}

void fail(const std::string& what) {
  std::fprintf(stderr, "\n==== fuzz invariant broken: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

namespace {

// The process's store, its arena mapped a second time, and the arena's first bytes as made.
struct Arena {
  Arena() {
    const dataplane::Settings defaults = settings();
    store::Geometry g{};
    std::string err;
    FUZZ_EXPECT(store::Geometry::compute(defaults.store.memory_mb << 20, defaults.store.item_size_max,
                                    defaults.store.chunk_min, defaults.store.growth_factor, &g,
                                    &err),
           "geometry: {}", err);
    dataplane::Settings s = defaults;
    s.store.shm = fmt::format("/dev/shm/cachet-fuzz-{}", getpid());
    unlink(s.store.shm.c_str());
    store = store::Store::open(s.store, &err);
    FUZZ_EXPECT(store != nullptr, "cannot open the store: {}", err);
    const int fd = open(s.store.shm.c_str(), O_RDWR | O_CLOEXEC);
    unlink(s.store.shm.c_str());  // lives while mapped; nothing is left behind on a crash
    FUZZ_EXPECT(fd >= 0, "cannot open {}", s.store.shm);
    void* p = mmap(nullptr, g.arena_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    FUZZ_EXPECT(p != MAP_FAILED, "cannot map the arena");
    map = static_cast<char*>(p);
    geo = g;
    made.assign(map, g.off_buckets);  // the buckets, overflow and items start zero
  }
  static dataplane::Settings settings() {
    dataplane::Settings s;
    s.store.memory_mb = 2;
    s.store.item_size_max = 4096;
    s.store.workers = 1;
    s.net.threads = 1;
    return s;
  }
  // Zeroes what the last input can have written (the buckets in use, the overflow buckets
  // handed out, the pages given to classes) and puts the tables back.
  void restore() {
    const auto* ih = reinterpret_cast<const store::IndexHeader*>(map + geo.off_index);
    const uint64_t shape = ih->shape.load();
    const uint64_t buckets = (uint64_t{1} << (shape >> 32)) + (shape & 0xffffffffu);
    const uint32_t overflow = ih->overflow_used;
    const uint32_t pages = reinterpret_cast<const store::ArenaHeader*>(map)->pages_given.load();
    FUZZ_EXPECT(buckets <= geo.max_buckets && overflow <= geo.overflow_max && pages <= geo.n_pages,
           "the last input left an impossible index or page count");
    std::memset(map + geo.off_buckets, 0, buckets * sizeof(store::Bucket));
    std::memset(map + geo.off_overflow, 0, overflow * sizeof(store::Bucket));
    std::memset(map + geo.off_items, 0, pages * geo.page_size);
    std::memcpy(map, made.data(), made.size());
  }

  std::unique_ptr<store::Store> store;
  char* map;
  store::Geometry geo;
  std::string made;  // header, class and page tables, index header: all before the buckets
};

Arena& arena() {
  static Arena a;
  return a;
}

}  // namespace

Target::Target() : settings(Arena::settings()), store(arena().store.get()) {
  arena().restore();
  server = std::make_unique<dataplane::Server>(*store, settings);
  server->worker_start(0);
}

Target::~Target() = default;

void Target::check_store() const {
  std::string report;
  FUZZ_EXPECT(store->check(&report), "store check failed:\n{}", report);
}

Stream::Stream(Target& t) : t_(t), state_(t.server->stream_open(0, false)) {}  // a client port

Stream::~Stream() { t_.server->stream_close(state_); }

void Stream::feed(std::string_view bytes) {
  if (closed_) return;
  pending_.append(bytes);
  while (!closed_) {
    const size_t before = pending_.size();
    drivers::StreamStep st = t_.server->stream_data(state_, pending_, out_);
    FUZZ_EXPECT(st.consumed <= before, "consumed {} of {} bytes", st.consumed, before);
    pending_.erase(0, st.consumed);
    sent_.append(out_.view());
    out_.clear();
    closed_ = st.close;
    if (st.consumed == 0 || pending_.empty()) break;
  }
  // Unconsumed input is bounded: a request line or data block of at most the item size (plus
  // the line slack), and the bytes of the last read.
  const size_t cap = t_.settings.store.item_size_max + 2048 + 16384 + bytes.size();
  FUZZ_EXPECT(closed_ || pending_.size() <= cap, "{} bytes left unconsumed (cap {})", pending_.size(),
         cap);
}

bool Stream::at_boundary() const {
  return !closed_ && pending_.empty() && t_.server->stream_idle(state_);
}

void feed_in_reads(Stream& s, const uint8_t* data, size_t size) {
  if (size < 2) return;
  const size_t max_read = data[0];
  uint32_t rnd = 0x9e3779b9u ^ (uint32_t{data[1]} * 0x85ebca6bu);
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  while (!in.empty()) {
    size_t n = in.size();
    if (max_read != 0) {
      rnd ^= rnd << 13;
      rnd ^= rnd >> 17;
      rnd ^= rnd << 5;
      n = std::min<size_t>(n, 1 + rnd % max_read);
    }
    s.feed(in.substr(0, n));
    in.remove_prefix(n);
  }
}

}  // namespace cachet::fuzz
