// Ring creation with flag fall-back, the multishot probe, and provided-buffer rings.
#include "drivers/uring/setup.hh"

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace cachet::drivers::uring {

const char* taskrun_name(TaskRun t) {
  switch (t) {
    case TaskRun::deferred: return "defer";
    case TaskRun::cooperative: return "coop";
    case TaskRun::plain: return "none";
  }
  return "none";
}

namespace {

unsigned flavour_flags(TaskRun t) {
  switch (t) {
    case TaskRun::deferred:
      return IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED |
             IORING_SETUP_SUBMIT_ALL;
    case TaskRun::cooperative: return IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    case TaskRun::plain: return 0;
  }
  return 0;
}

}  // namespace

int create_ring(io_uring* ring, unsigned entries, TaskRun want, TaskRun* got, std::string* error) {
  int r = -EINVAL;
  for (int t = static_cast<int>(want); t <= static_cast<int>(TaskRun::plain); ++t) {
    io_uring_params p{};
    p.flags = flavour_flags(static_cast<TaskRun>(t)) | IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 8;
    r = io_uring_queue_init_params(entries, ring, &p);
    if (r == 0) {
      *got = static_cast<TaskRun>(t);
      return 0;
    }
    if (r != -EINVAL) break;  // only an unknown flag is worth a simpler try
  }
  *error = fmt::format("io_uring_setup failed: {}{}", std::strerror(-r),
                       r == -EPERM || r == -ENOSYS
                           ? " (is io_uring disabled, see sysctl kernel.io_uring_disabled?)"
                           : "");
  return r;
}

int enable_ring(io_uring* ring, TaskRun taskrun) {
  if (taskrun != TaskRun::deferred) return 0;
  // liburing 2.3 declares io_uring_enable_rings() but does not export it; same call, raw.
  return io_uring_register(ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
}

namespace {

bool run_probe() {
  io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) != 0) return false;
  bool ok = false;
  int sv[2] = {-1, -1};
  {
    BufRing bufs;
    if (bufs.init(&ring, 0, 2, 64) == 0 &&
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0 && write(sv[1], "x", 1) == 1) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_recv_multishot(sqe, sv[0], nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 0;
      io_uring_cqe* cqe = nullptr;
      if (io_uring_submit_and_wait(&ring, 1) >= 0 && io_uring_peek_cqe(&ring, &cqe) == 0) {
        ok = cqe->res == 1 && (cqe->flags & IORING_CQE_F_BUFFER) && (cqe->flags & IORING_CQE_F_MORE);
      }
    }
    io_uring_queue_exit(&ring);  // cancels the pending recv before the buffers go
  }
  for (int fd : sv)
    if (fd >= 0) close(fd);
  return ok;
}

}  // namespace

// On a thread of its own: tearing down a ring with a request pending queues task work to the
// submitting thread, which would interrupt (EINTR) a blocking call of open()'s caller.
bool probe_multishot() {
  static const bool supported = [] {
    bool ok = false;
    std::thread([&ok] { ok = run_probe(); }).join();
    return ok;
  }();
  return supported;
}

BufRing::~BufRing() { release(); }

int BufRing::init(io_uring* ring, uint16_t group, unsigned count, unsigned size) {
  if (count == 0 || count > 32768 || (count & (count - 1)) != 0 || size == 0) return -EINVAL;
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  ring_bytes_ = (count * sizeof(io_uring_buf) + page - 1) / page * page;
  buf_bytes_ = size_t{count} * size;
  void* r = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) return -errno;
  void* b = mmap(nullptr, buf_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b == MAP_FAILED) {
    int e = errno;
    munmap(r, ring_bytes_);
    return -e;
  }
  br_ = static_cast<io_uring_buf_ring*>(r);
  bufs_ = static_cast<char*>(b);
  size_ = size;
  mask_ = io_uring_buf_ring_mask(count);
  group_ = group;

  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group;
  int rc = io_uring_register_buf_ring(ring, &reg, 0);
  if (rc != 0) {
    release();
    return rc;
  }
  io_uring_buf_ring_init(br_);
  for (unsigned i = 0; i < count; ++i)
    io_uring_buf_ring_add(br_, buffer(static_cast<uint16_t>(i)), size_, static_cast<uint16_t>(i),
                          mask_, static_cast<int>(i));
  io_uring_buf_ring_advance(br_, static_cast<int>(count));
  return 0;
}

// Only after the ring is gone or the group unregistered: the kernel may write until then.
void BufRing::release() {
  if (br_) munmap(br_, ring_bytes_);
  if (bufs_) munmap(bufs_, buf_bytes_);
  br_ = nullptr;
  bufs_ = nullptr;
}

}  // namespace cachet::drivers::uring
