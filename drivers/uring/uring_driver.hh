// The kernel-socket driver: TCP and UDP through one io_uring and one (pinned) thread per worker.
// Each worker has its own SO_REUSEPORT sockets, so the kernel spreads connections and datagrams.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "drivers/driver.hh"

namespace cachet::drivers {

// Knobs of this driver beyond DriverOptions; the defaults suit production.
struct UringOptions {
  bool force_single_shot = false;  // use single-shot accept/recv even when multishot works (tests)
  bool tcp_any_port = false;       // tcp_port 0 = a port the kernel picks, not "no TCP" (tests)
  bool udp_any_port = false;       // udp_port 0 = a port the kernel picks, not "no UDP" (tests)
  unsigned ring_entries = 1024;    // submission queue entries per worker (CQ gets 8x)
  unsigned tcp_buffers = 512;      // provided receive buffers per worker (power of two)
  unsigned tcp_buffer_size = 8192; // bytes per provided buffer (and per single-shot recv)
};

// What open() found the kernel supports; fixed for the driver's lifetime.
struct UringFeatures {
  bool multishot = false;        // multishot accept/recv(msg) from a registered buffer ring
  const char* taskrun = "none";  // "defer" (SINGLE_ISSUER|DEFER_TASKRUN), "coop" or "none"
};

// Everything a running UringDriver serves, handed to a successor process (upgrade in place):
// listening sockets, UDP sockets and the open connections with their unconsumed input.
struct Handoff {
  struct Stream {
    int fd;
    std::string pending;  // bytes received but not yet a complete request
  };
  std::vector<int> tcp_listeners;
  std::vector<int> udp_sockets;
  std::vector<Stream> streams;
};

class UringDriver final : public Driver {
 public:
  explicit UringDriver(const DriverOptions& opts, const UringOptions& uopts = {});
  ~UringDriver() override;
  UringDriver(const UringDriver&) = delete;
  UringDriver& operator=(const UringDriver&) = delete;

  // Resolves the listen addresses, opens every worker's sockets and ring. Call once.
  bool open(std::string* error) override;
  // Runs the workers until stop(), then closes every connection (stream_close for each) and
  // the sockets. Call once, after a successful open().
  void run(Handler& handler) override;
  // Async-signal-safe; may come before run(), which then returns at once.
  void stop() override;
  DriverStats stats() const override;
  // After open(): the worker threads (-t); worker ids passed to the Handler are below it.
  unsigned workers() const override;

  // After open(): the TCP/UDP port of the first listen address (0 when that transport is off).
  uint16_t tcp_port_bound() const;
  uint16_t udp_port_bound() const;
  // After open(): the kernel features chosen.
  const UringFeatures& features() const;

  // Upgrade in place, old side: asks run() to stop at request boundaries (no accept, no
  // receive; complete requests answered and sent; connections detached, not closed) and
  // return. Async-signal-safe. take_handoff() after run() returned gives the descriptors.
  void begin_handoff();
  Handoff take_handoff();
  // New side: expect_handoff() before open() makes open() prepare rings and workers but open
  // no TCP/UDP socket of its own; adopt() (before run()) then gives it the predecessor's
  // descriptors. Connections are spread over the workers, their pending bytes parsed first.
  void expect_handoff();
  void adopt(Handoff h);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachet::drivers
