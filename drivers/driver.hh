// The one interface between byte movers (drivers) and the dataplane that understands the bytes.
// A driver owns threads, sockets or ports and buffers; the Handler owns protocol state.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/byte_buf.hh"
#include "drivers/udp_policy.hh"

namespace cachet::drivers {

// What a driver needs to know about the service it serves (memcached's flag names).
struct DriverOptions {
  std::string listen = "127.0.0.1";  // -l: address(es), comma separated
  uint16_t tcp_port = 11211;          // -p: 0 = no TCP
  uint16_t udp_port = 0;              // -U: 0 = no UDP (memcached 1.6's default)
  unsigned threads = 4;               // -t: worker threads, one ring/queue each
  unsigned max_conns = 1024;          // -c: concurrent stream connections
  std::string admin_socket;           // unix socket (mode 0600) served like TCP; "" = none
  size_t out_limit = 1 << 20;         // stop feeding a connection input while this much is unsent
  size_t in_limit = 2 << 20;          // stop receiving while this much input is unconsumed
  bool pin_threads = false;           // pin worker i to cpu i % ncpu (cachetd --pin-threads)
  UdpPolicy udp_policy;               // rate and reply bound for UDP, on every driver
  unsigned worker_base = 0;           // the Handler sees workers worker_base .. + workers() - 1
                                      // (a second driver beside another numbers after it)
};

// Per-driver counters, summed over its workers; the same meaning on every driver. bytes_read
// and bytes_written count what memcached counts: the protocol's bytes as the sockets carry
// them (stream bytes, and UDP payloads with their 8-byte frame header), never the Ethernet,
// IP or UDP headers, nor ARP, ICMP or exception-path traffic.
struct DriverStats {
  uint64_t curr_connections = 0;
  uint64_t total_connections = 0;
  uint64_t rejected_connections = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t datagrams_in = 0;   // memcache datagrams received (answered or dropped)
  uint64_t datagrams_out = 0;  // reply datagrams sent
  UdpDropCounts udp_drops;     // datagrams not answered and reply datagrams not sent, by reason

  DriverStats& operator+=(const DriverStats& o) {
    curr_connections += o.curr_connections;
    total_connections += o.total_connections;
    rejected_connections += o.rejected_connections;
    bytes_read += o.bytes_read;
    bytes_written += o.bytes_written;
    datagrams_in += o.datagrams_in;
    datagrams_out += o.datagrams_out;
    udp_drops += o.udp_drops;
    return *this;
  }
};

// The outcome of feeding a connection's input to the handler.
struct StreamStep {
  size_t consumed = 0;  // bytes of input used (the rest is offered again with more input)
  bool close = false;   // close the connection once `out` has been sent
};

// Sends reply datagrams to the peer of the datagram being handled.
class DatagramSink {
 public:
  virtual ~DatagramSink() = default;
  // One datagram: `head` followed by `body` (memcached's frame header and its share of the
  // reply), in two parts so that the reply is copied once, into the datagram.
  virtual void emit(std::string_view head, std::string_view body) = 0;
};

// Implemented by the dataplane. Every call for one connection or one worker comes from that
// worker's thread; calls for different workers may run concurrently.
class Handler {
 public:
  virtual ~Handler() = default;
  // Called once on each worker thread before that worker's first connection or datagram.
  virtual void worker_start(unsigned worker) = 0;
  // A stream connection was accepted on `worker` (admin: on the admin socket). Returns the
  // handler's state for it.
  virtual void* stream_open(unsigned worker, bool admin) = 0;
  // `in` holds all unconsumed input of the connection, in order. The handler appends replies
  // to `out`, in request order, and should stop early once out.size() >= out_limit; the driver
  // calls again after sending. A step that consumes nothing waits for more input.
  virtual StreamStep stream_data(void* state, std::string_view in, common::ByteBuf& out) = 0;
  // The connection is gone (closed by either side, or handed to another process); state is
  // released.
  virtual void stream_close(void* state) = 0;
  // True when the connection sits at a request boundary that another process could pick up
  // from the unconsumed input alone (no data block half swallowed, no replies held back).
  virtual bool stream_idle(void* state) { return state != nullptr; }
  // The datagrams of a burst to be handled on `worker`, in order, so that the handler can
  // start fetching what they will need and their cache misses overlap. Stage 0 comes first;
  // stage 1, for the same burst, after the driver has done other work (answered the previous
  // burst, say), so that what stage 0 asked for has arrived: the handler may keep state
  // between the two. Stage 2 comes right before the burst's datagrams are handed to
  // datagram(), in the order given, so that the handler may reuse what stage 0 computed (the
  // spans' views must still point at the datagrams then). The burst's span keeps its address
  // across the stages (`burst.data()` names the burst). No effect on results, even if a stage
  // is skipped.
  virtual void prefetch(unsigned worker, std::span<const std::string_view> burst, int stage) {
    (void)worker, (void)burst, (void)stage;
  }
  // One datagram arrived on `worker` (the driver's UdpGuard admitted it); replies go to
  // `reply`. The handler must not read `in` after its first emit(): a driver may write the
  // reply over the request. Returns UdpDrop::none when it was a request (answered), else why
  // it was dropped unanswered (its frame header); the driver counts that in its UdpGuard.
  virtual UdpDrop datagram(unsigned worker, std::string_view in, DatagramSink& reply) = 0;
};

class Driver {
 public:
  virtual ~Driver() = default;
  // Opens sockets or ports; returns false with *error set (naming what failed) when it cannot.
  virtual bool open(std::string* error) = 0;
  // Serves until stop(); returns after every worker has finished.
  virtual void run(Handler& handler) = 0;
  // Asks run() to return; safe from a signal handler.
  virtual void stop() = 0;
  virtual DriverStats stats() const = 0;
  // After open(): how many workers (threads or lcores) call the Handler; worker ids are
  // 0 .. workers() - 1.
  virtual unsigned workers() const = 0;
  // Counters beyond DriverStats as (name, value), e.g. per-core packets and drops by reason;
  // `stats` prints them after memcached's own lines.
  virtual void extra_stats(std::vector<std::pair<std::string, uint64_t>>& out) const { (void)out; }
  // After open(): the CPUs its workers busy-poll (DPDK lcores), which background work must
  // leave alone. Drivers whose workers sleep in the kernel have none.
  virtual std::vector<unsigned> poll_cpus() const { return {}; }
  // The prefix of worker w's lines among extra_stats ("dpdk:lcore0:"), so that `stats` can add
  // the dataplane's per-worker figures beside them; "" when the driver prints none per worker.
  virtual std::string worker_stats_prefix(unsigned w) const { (void)w; return {}; }
};

}  // namespace cachet::drivers
