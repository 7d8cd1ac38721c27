// How cachet-load moves bytes: one Transport per worker thread owns that thread's connections
// (TCP streams or connected UDP sockets) and moves bytes in batches. Kernel sockets (io_uring
// or epoll) and DPDK (dpdk_transport.cc: UDP on an ethdev queue, one per lcore).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace cachet::perf {

enum class Framing { stream, datagram };

// Receives what a Transport delivers; called only from inside Transport::poll().
class TransportHandler {
 public:
  virtual ~TransportHandler() = default;
  // Bytes arrived on conn: a piece of the stream, or exactly one datagram. The bytes are valid
  // only during the call; the handler may call Transport::send() from here.
  virtual void on_recv(uint32_t conn, std::string_view bytes) = 0;
  // conn was closed by the peer (err 0) or failed (err = errno); nothing more arrives on it.
  virtual void on_closed(uint32_t conn, int err) = 0;
  // A transport that receives in bursts (DPDK) may tell when the burst arrived (mono_ns), once
  // per burst before its on_recv() calls, saving the handler a clock read per datagram.
  virtual void on_rx_time(uint64_t) {}
};

// Link-level counters of a transport that sees frames (DPDK); kernel transports report zeros.
struct LinkCounters {
  uint64_t tx_packets = 0, rx_packets = 0;
  // Frames the server sent that are wrong at the link/IP/UDP level (bad checksum, length,
  // address, port) or requests that could not be sent: errors, never silently ignored.
  uint64_t bad_frames = 0;
  std::string first_bad;  // what the first bad frame was
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Opens n connections numbered 0..n-1 to host:port. False with *error naming what failed.
  virtual bool open(const std::string& host, uint16_t port, unsigned n, Framing framing,
                    std::string* error) = 0;
  // Queues bytes on conn (stream: appended to the stream; datagram: exactly one datagram).
  // The bytes are copied; they leave at the latest during the next poll().
  virtual void send(uint32_t conn, std::string_view bytes) = 0;
  // Sends what is queued, then waits up to timeout_us (0: not at all) for events and delivers
  // them. Returns the number of events delivered.
  virtual int poll(uint64_t timeout_us, TransportHandler& handler) = 0;
  // Closes every connection; no callbacks follow.
  virtual void close_all() = 0;
  virtual LinkCounters link_counters() const { return {}; }
};

std::unique_ptr<Transport> make_epoll_transport();
std::unique_ptr<Transport> make_uring_transport();

// Opens a connected TCP or UDP socket to host:port (blocking connect, then TCP_NODELAY and
// O_NONBLOCK if asked). Returns the fd, or -1 with *error set. Shared by kernel transports.
int connect_socket(const std::string& host, uint16_t port, Framing framing, bool nonblocking,
                   std::string* error);

}  // namespace cachet::perf
