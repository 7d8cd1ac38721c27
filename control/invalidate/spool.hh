// One server's spool: an append-only file of delete batches that the server did not
// acknowledge, replayed to it in order when it answers again. Records are checksummed (a torn
// tail after a crash is cut off when the file is opened); a header keeps the offset up to which
// the server acknowledged the replay. Thread safe: the spool writer appends, the I/O thread
// reads and consumes.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cachet::invalidate {

class Spool {
 public:
  Spool() = default;
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;
  ~Spool();

  // Opens (creating) the file at path; replay starts at the consumed offset in its header. A
  // torn or corrupt tail is cut off (logged with how many bytes). False with *error.
  bool open(const std::string& path, std::string* error);
  const std::string& path() const { return path_; }

  // Appends one record per batch and makes them durable (fdatasync). False with *error (disk
  // full, I/O error): nothing is counted as spooled then.
  bool append(const std::vector<std::vector<std::string>>& batches, std::string* error);

  // The next record after the replay cursor: its keys and the offset after it. False when the
  // cursor is at the end (or on a read error, which is logged).
  bool read_next(std::vector<std::string>* keys, uint64_t* end_offset);
  // The server acknowledged everything up to end_offset (a record boundary). When all is
  // consumed the file is emptied.
  void consume(uint64_t end_offset);
  // Moves the replay cursor back to the consumed offset (replayed batches were not answered).
  void rewind();
  // True when every record has been read by replay (the cursor is at the end).
  bool replay_done() const;
  // Bytes and deletes appended and not consumed.
  uint64_t pending_bytes() const;
  uint64_t pending_deletes() const;
  // The size one more record of these keys would take.
  static uint64_t record_size(const std::vector<std::string>& keys);

 private:
  bool scan(std::string* error);
  void write_consumed();

  mutable std::mutex mu_;
  std::string path_;
  int fd_ = -1;
  uint64_t consumed_ = 0;  // acknowledged up to here (a record boundary)
  uint64_t cursor_ = 0;    // replay has read up to here
  uint64_t end_ = 0;       // end of the last whole record
  uint64_t pending_deletes_ = 0;
  std::deque<std::pair<uint64_t, uint32_t>> counts_;  // (record end, deletes) not consumed
  bool appending_ = false;
};

}  // namespace cachet::invalidate
