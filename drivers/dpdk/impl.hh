// Internals shared by the DPDK driver's setup (dpdk_driver.cc) and its poll loop (lcore.cc).
#pragma once

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include "drivers/dpdk/dpdk_driver.hh"
#include "drivers/dpdk/packet.hh"

namespace cachet::drivers::dpdk {

inline constexpr uint16_t kBurst = 32;

// Per-lcore counters, one table, cache-line aligned; summed on read. rx/tx_bytes count whole
// frames; bytes_read/bytes_written what memcached counts (UDP payloads of memcache datagrams,
// frame header included). datagrams: memcache datagrams received; requests: those the
// dataplane answered (the rest are counted by reason in the UdpGuard).
#define CACHET_LCORE_COUNTERS(X)                                                   \
  X(rx_packets) X(rx_bytes) X(tx_packets) X(tx_bytes) X(datagrams) X(requests)     \
  X(replies) X(bytes_read) X(bytes_written) X(busy_polls) X(idle_polls)            \
  X(arp_replies) X(icmp_replies) X(to_kernel) X(from_kernel) X(no_mbuf) X(tx_dropped)

struct alignas(64) LcoreStats {
#define CACHET_X(n) std::atomic<uint64_t> n{0};
  CACHET_LCORE_COUNTERS(CACHET_X)
#undef CACHET_X
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Drop::count)> drops{};
  // TSC cycles spent in loop iterations that found work, and in those that did not.
  std::atomic<uint64_t> busy_tsc{0}, idle_tsc{0};
};

struct DpdkDriver::Impl {
  Options opts;
  uint16_t udp_port;
  UdpPolicy policy;
  unsigned worker_base = 0;  // the Handler's id of lcore 0
  Identity me;
  unsigned prefix = 24;
  int exc_port = -1;
  unsigned n_workers = 0;
  bool eal_ready = false;
  bool port_started = false;
  bool exc_started = false;
  bool rx_csum = false;  // the NIC validates IPv4/UDP checksums for us
  std::string exc_ifname;
  const char* steering = "one queue";  // how requests reach their lcore
  std::array<rte_mempool*, RTE_MAX_NUMA_NODES> pools{};
  std::unique_ptr<LcoreStats[]> stats;
  std::vector<std::unique_ptr<UdpGuard>> guards;  // per lcore: the UDP policy and its drops
  std::atomic<bool> quit{false};
  Handler* handler = nullptr;

  rte_mempool* pool_for_lcore(unsigned lcore) const;
  rte_mempool* pool_for_port(uint16_t port) const;  // the pool on the port's socket
  int lcore_main();  // the poll loop of the calling lcore
};

}  // namespace cachet::drivers::dpdk
