// The io_uring worker's per-socket state: stream connections, listeners and UDP sockets.
// Private to drivers/uring; each object belongs to one worker thread.
#pragma once

#include <linux/time_types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <memory>

#include "common/byte_buf.hh"

namespace cachet::drivers::uring {

// Room for the largest datagram plus the recvmsg header and source address.
inline constexpr unsigned kUdpBufferSize = 65536 + 512;

struct alignas(64) Conn {
  int fd = -1;
  void* state = nullptr;      // the handler's
  common::ByteBuf in;         // input the handler has not consumed yet
  common::ByteBuf out;        // replies not yet handed to the kernel
  common::ByteBuf sending;    // replies handed to the kernel (the one send in flight)
  std::unique_ptr<char[]> rx; // receive buffer in single-shot mode
  Conn* next = nullptr;       // dirty list or free list
  bool live = false;
  bool dirty = false;
  bool recv_armed = false;
  bool recv_cancel = false;   // a cancel for the recv was submitted
  bool send_inflight = false;
  bool send_cancel = false;
  bool feed_pending = false;  // `in` holds bytes the handler still has to see (back-pressure)
  bool eof = false;           // the peer will send no more
  bool closing = false;       // the handler asked to close once replies are out
  bool dead = false;          // close now, dropping what is unsent
  bool admin = false;         // accepted on the admin socket: closed, not handed off
};
static_assert(alignof(Conn) == 64 && sizeof(Conn) <= 192, "Conn: three cache lines at most");

struct alignas(8) Listener {
  int fd = -1;
  bool admin = false;  // the local admin socket: stays with this process on a handoff
  bool armed = false;
  bool retry_armed = false;
  __kernel_timespec retry_after{0, 10'000'000};  // re-arm accept after EMFILE and the like
};

struct alignas(8) UdpSocket {
  int fd = -1;
};

// One outstanding receive: the multishot recvmsg of a socket, or one of its single-shot ones.
struct alignas(8) UdpRecv {
  UdpSocket* sock = nullptr;
  bool armed = false;
  msghdr mh{};
  iovec iov{};
  sockaddr_storage from{};
  std::unique_ptr<char[]> buf;  // single-shot mode only
};

// One reply datagram in flight.
struct alignas(8) UdpSend {
  msghdr mh{};
  iovec iov{};
  sockaddr_storage to{};
  common::ByteBuf data;
  UdpSend* next = nullptr;
};

}  // namespace cachet::drivers::uring
