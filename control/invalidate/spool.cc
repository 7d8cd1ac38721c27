// The spool file: a 16-byte header ("CIVSPL01", consumed offset) and records of
//   u32 magic 'SPLR' | u32 key count | u32 payload bytes | u64 XXH3 of the payload | payload
// where the payload is the keys joined by '\n' (keys never hold whitespace).
#include "control/invalidate/spool.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/hash.hh"
#include "common/log.hh"

namespace cachet::invalidate {

namespace {

constexpr char kFileMagic[8] = {'C', 'I', 'V', 'S', 'P', 'L', '0', '1'};
constexpr uint64_t kHeader = 16;
constexpr uint32_t kRecordMagic = 0x53504c52;  // "SPLR"
constexpr uint64_t kRecordHead = 20;

struct RecordHead {
  uint32_t magic, count, bytes;
  uint64_t hash;
};

void put32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// All n bytes at off through io (pread or pwrite), retrying short transfers and EINTR.
template <class Buf, class Io>
bool transfer_all(int fd, Buf* buf, size_t n, uint64_t off, Io io) {
  while (n > 0) {
    ssize_t r = io(fd, buf, n, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
    off += static_cast<uint64_t>(r);
  }
  return true;
}
bool pread_all(int fd, char* buf, size_t n, uint64_t off) {
  return transfer_all(fd, buf, n, off, ::pread);
}
bool pwrite_all(int fd, const char* buf, size_t n, uint64_t off) {
  return transfer_all(fd, buf, n, off, ::pwrite);
}

// Reads the record at off; false if there is no whole valid record there.
bool read_record(int fd, uint64_t off, uint64_t file_end, RecordHead* h, std::string* payload) {
  if (file_end - off < kRecordHead) return false;
  char head[kRecordHead];
  if (!pread_all(fd, head, sizeof head, off)) return false;
  h->magic = get32(head);
  h->count = get32(head + 4);
  h->bytes = get32(head + 8);
  h->hash = get64(head + 12);
  if (h->magic != kRecordMagic || file_end - off - kRecordHead < h->bytes) return false;
  payload->resize(h->bytes);
  if (!pread_all(fd, payload->data(), h->bytes, off + kRecordHead)) return false;
  return common::hash_key(*payload) == h->hash;
}

}  // namespace

Spool::~Spool() {
  if (fd_ >= 0) ::close(fd_);
}

uint64_t Spool::record_size(const std::vector<std::string>& keys) {
  uint64_t n = kRecordHead;
  for (const std::string& k : keys) n += k.size() + 1;
  return n;
}

bool Spool::open(const std::string& path, std::string* error) {
  std::lock_guard lock(mu_);
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    *error = fmt::format("cannot open spool {}: {}", path, std::strerror(errno));
    return false;
  }
  return scan(error);
}

bool Spool::scan(std::string* error) {
  struct stat st {};
  fstat(fd_, &st);
  const auto size = static_cast<uint64_t>(st.st_size);
  char header[kHeader];
  if (size < kHeader) {
    std::memcpy(header, kFileMagic, 8);
    put64(header + 8, kHeader);
    if (::ftruncate(fd_, 0) != 0 || !pwrite_all(fd_, header, kHeader, 0)) {
      *error = fmt::format("cannot write spool {}: {}", path_, std::strerror(errno));
      return false;
    }
    consumed_ = cursor_ = end_ = kHeader;
    return true;
  }
  if (!pread_all(fd_, header, kHeader, 0) || std::memcmp(header, kFileMagic, 8) != 0) {
    *error = fmt::format("{} is not a cachet-invalidate spool file (move it away)", path_);
    return false;
  }
  consumed_ = get64(header + 8);
  if (consumed_ < kHeader || consumed_ > size) consumed_ = kHeader;
  // Walk the records from the consumed offset; whatever follows the last whole one is torn.
  uint64_t off = consumed_;
  RecordHead h;
  std::string payload;
  while (read_record(fd_, off, size, &h, &payload)) {
    off += kRecordHead + h.bytes;
    pending_deletes_ += h.count;
    counts_.emplace_back(off, h.count);
  }
  if (off != size) {
    common::log::warn("spool {}: cut {} bytes of a torn or corrupt tail after offset {}", path_,
                      size - off, off);
    if (::ftruncate(fd_, static_cast<off_t>(off)) != 0) {
      *error = fmt::format("cannot truncate spool {}: {}", path_, std::strerror(errno));
      return false;
    }
  }
  cursor_ = consumed_;
  end_ = off;
  return true;
}

bool Spool::append(const std::vector<std::vector<std::string>>& batches, std::string* error) {
  std::string buf;
  std::vector<std::pair<uint64_t, uint32_t>> counts;
  uint64_t deletes = 0;
  std::unique_lock lock(mu_);
  uint64_t off = end_;
  for (const std::vector<std::string>& keys : batches) {
    std::string payload;
    for (const std::string& k : keys) payload += k + "\n";
    char head[kRecordHead];
    put32(head, kRecordMagic);
    put32(head + 4, static_cast<uint32_t>(keys.size()));
    put32(head + 8, static_cast<uint32_t>(payload.size()));
    put64(head + 12, common::hash_key(payload));
    buf.append(head, kRecordHead);
    buf += payload;
    off += kRecordHead + payload.size();
    counts.emplace_back(off, static_cast<uint32_t>(keys.size()));
    deletes += keys.size();
  }
  const uint64_t at = end_;
  appending_ = true;  // consume() must not empty the file under this write
  lock.unlock();      // only one thread appends; readers stay below end_
  if (!pwrite_all(fd_, buf.data(), buf.size(), at) || ::fdatasync(fd_) != 0) {
    *error = fmt::format("cannot write spool {}: {}", path_, std::strerror(errno));
    lock.lock();
    appending_ = false;
    // A partial record past end_ is never read; the next open cuts it off.
    return false;
  }
  lock.lock();
  appending_ = false;
  end_ = off;
  pending_deletes_ += deletes;
  counts_.insert(counts_.end(), counts.begin(), counts.end());
  return true;
}

bool Spool::read_next(std::vector<std::string>* keys, uint64_t* end_offset) {
  std::lock_guard lock(mu_);
  if (cursor_ >= end_) return false;
  RecordHead h;
  std::string payload;
  if (!read_record(fd_, cursor_, end_, &h, &payload)) {
    common::log::error("spool {}: unreadable record at offset {}; replay stops there", path_,
                       cursor_);
    return false;
  }
  keys->clear();
  size_t start = 0;
  for (size_t i = 0; i < payload.size(); ++i)
    if (payload[i] == '\n') {
      keys->push_back(payload.substr(start, i - start));
      start = i + 1;
    }
  cursor_ += kRecordHead + h.bytes;
  *end_offset = cursor_;
  return true;
}

void Spool::consume(uint64_t end_offset) {
  std::lock_guard lock(mu_);
  if (end_offset <= consumed_) return;
  consumed_ = end_offset;
  while (!counts_.empty() && counts_.front().first <= consumed_) {
    pending_deletes_ -= counts_.front().second;
    counts_.pop_front();
  }
  if (consumed_ == end_ && !appending_) {
    // Everything replayed and acknowledged: start the file again.
    if (::ftruncate(fd_, static_cast<off_t>(kHeader)) == 0) consumed_ = cursor_ = end_ = kHeader;
  }
  write_consumed();
}

void Spool::write_consumed() {
  char buf[8];
  put64(buf, consumed_);
  // Not synced: if the offset is lost, some deletes are replayed twice (harmless).
  if (!pwrite_all(fd_, buf, 8, 8))
    common::log::warn("spool {}: cannot record the replay offset: {}", path_, std::strerror(errno));
}

void Spool::rewind() {
  std::lock_guard lock(mu_);
  cursor_ = consumed_;
}

bool Spool::replay_done() const {
  std::lock_guard lock(mu_);
  return cursor_ >= end_;
}

uint64_t Spool::pending_bytes() const {
  std::lock_guard lock(mu_);
  return end_ - consumed_;
}

uint64_t Spool::pending_deletes() const {
  std::lock_guard lock(mu_);
  return pending_deletes_;
}

}  // namespace cachet::invalidate
