// io_uring set-up decided once at open(): the ring flavour, multishot support, and the
// provided-buffer rings the kernel receives into.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace cachet::drivers::uring {

// How the kernel runs completion work for a ring, most capable first.
enum class TaskRun : uint8_t {
  deferred,     // SINGLE_ISSUER | DEFER_TASKRUN: work runs only when the owner thread waits
  cooperative,  // COOP_TASKRUN: no IPI to interrupt the owner thread
  plain,
};

const char* taskrun_name(TaskRun t);

// Initialises *ring with `entries` SQEs and 8x CQEs, trying `want` and then each less capable
// flavour the kernel refuses with EINVAL; *got receives the one used. A deferred ring is
// created disabled: its worker thread must call enable_ring() before submitting.
// Returns 0 or -errno, with *error naming the problem.
int create_ring(io_uring* ring, unsigned entries, TaskRun want, TaskRun* got, std::string* error);

// Makes the calling thread the ring's submitter (deferred rings). Returns 0 or -errno.
int enable_ring(io_uring* ring, TaskRun taskrun);

// True when the kernel delivers multishot recv completions from a registered buffer ring
// (Linux 6.0+); tried for real on a socketpair, not guessed from the version. Probes once
// per process.
bool probe_multishot();

// A ring of `count` equal buffers the kernel picks from for receives (one buffer group).
// The owner hands each buffer back with recycle() once it has used the bytes.
class BufRing {
 public:
  BufRing() = default;
  ~BufRing();
  BufRing(const BufRing&) = delete;
  BufRing& operator=(const BufRing&) = delete;

  // Registers the buffers with `ring` as group `group`; count is a power of two <= 32768.
  // Returns 0 or -errno.
  int init(io_uring* ring, uint16_t group, unsigned count, unsigned size);
  bool ready() const { return br_ != nullptr; }
  uint16_t group() const { return group_; }
  unsigned size() const { return size_; }
  char* buffer(uint16_t id) const { return bufs_ + size_t{id} * size_; }
  void recycle(uint16_t id) {
    io_uring_buf_ring_add(br_, buffer(id), size_, id, mask_, 0);
    io_uring_buf_ring_advance(br_, 1);
  }

 private:
  void release();

  io_uring_buf_ring* br_ = nullptr;
  char* bufs_ = nullptr;
  size_t ring_bytes_ = 0;
  size_t buf_bytes_ = 0;
  unsigned size_ = 0;
  int mask_ = 0;
  uint16_t group_ = 0;
};

}  // namespace cachet::drivers::uring
