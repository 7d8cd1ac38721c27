// DPDK start-up and port set-up, shared by cachetd's driver (dpdk_driver.cc) and the load
// generator's DPDK transport (perf/loadgen/dpdk_transport.cc): EAL from an operator's argument
// string, an mbuf pool, and an ethdev port with its queue pairs configured and started.
#pragma once

#include <cstdint>
#include <string>

#include "drivers/dpdk/packet.hh"

struct rte_mempool;

namespace cachet::drivers::dpdk {

// rte_eal_init with argv = program + the words of `args` (split_args). Call once per process.
// False with *error naming what failed.
bool eal_init(const char* program, const std::string& args, std::string* error);

// A packet mbuf pool of n mbufs (default data room) on `socket`; nullptr with *error.
rte_mempool* pool_create(const std::string& name, unsigned n, int socket, std::string* error);

// What to make of a port.
struct PortSetup {
  uint16_t port = 0;
  unsigned rx_queues = 1, tx_queues = 1;
  rte_mempool* pool = nullptr;  // RX queues take their mbufs from it
  bool want_rss = false;        // spread IPv4/UDP flows over the RX queues when the device can
  bool want_rx_checksum = false;  // have the device check IPv4 and UDP checksums when it can
  uint16_t rx_desc = 1024, tx_desc = 1024;  // ring sizes (the device may adjust them)
};

// What the port turned out to be.
struct PortInfo {
  std::string driver;       // the PMD's name
  Mac mac{};
  bool rss = false;          // RSS is on
  bool rx_checksum = false;  // checksum offload is on
  unsigned if_index = 0;     // the kernel interface behind it (tap, virtio_user), 0 if none
};

// Configures the port's queues and starts it. False with *error naming the port and the step
// (device info, queue counts, configure, queue set-up, start); the port is then not started.
bool port_start(const PortSetup& s, PortInfo* info, std::string* error);

// Stops and closes a started port.
void port_close(uint16_t port);

}  // namespace cachet::drivers::dpdk
