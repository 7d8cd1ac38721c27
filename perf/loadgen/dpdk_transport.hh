// cachet-load's DPDK transport (built only with libdpdk): EAL from --dpdk-args, one ethdev port
// (a net_memif client vdev in this project's benchmarks) with one RX/TX queue pair per lcore,
// one mbuf pool; the server's MAC from an ARP request; memcache requests as UDP datagrams with
// memcached's frame header, sent in bursts of 32; replies classified and validated by the
// product's pure packet layer (drivers/dpdk/packet.hh) before the worker parses them.
// `--mode ceiling` instead echoes fixed-size UDP frames off a forwarder (dpdk-testpmd in
// macswap/5tswap mode) and reports round trips per second: the packet-I/O ceiling.
// No DPDK header here: main.cc and the worker see only these interfaces.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "perf/loadgen/options.hh"
#include "perf/loadgen/transport.hh"

namespace cachet::perf {

class DpdkContext {
 public:
  virtual ~DpdkContext() = default;
  // Worker threads: one per EAL lcore (the main lcore is worker 0).
  virtual unsigned lcores() const = 0;
  // Runs fn(i) for every worker i on its lcore (worker 0 on the calling main lcore) and
  // returns when all have returned.
  virtual void launch(const std::function<void(unsigned)>& fn) = 0;
  // Worker i's transport: queue pair i; connection c is UDP source port 20000 + 1100 i + c.
  virtual std::unique_ptr<Transport> transport(unsigned worker) = 0;
  // The "dpdk" JSON object (port, MACs, ARP result) and a one-line description.
  virtual std::string json() const = 0;
  virtual std::string describe() const = 0;
  // --dpdk-linger: after the run (every lcore idle), prints "cachet-load: lingering ..." and
  // keeps the port open until the link goes down (the peer stopped) or `seconds` pass. Lets a
  // driver stop the memif server first: DPDK 22.11's memif PMD unmaps the shared regions on a
  // peer disconnect while the server's lcore may be inside rte_eth_rx_burst (SIGSEGV).
  virtual void linger(double seconds) = 0;
};

// Initialises EAL, the port and the pool, waits for the link, and (memcache mode) resolves the
// peer's MAC with ARP; every wait is bounded by --dpdk-arp-timeout. nullptr with *error on
// failure (EAL is cleaned up again).
std::unique_ptr<DpdkContext> dpdk_open(const Options& opt, std::string* error);

// --mode ceiling: sends frames on every lcore until --duration (after --warmup) or
// --max-requests returned frames, prints the summary, writes --json. Returns the exit status.
int run_ceiling(const Options& opt, DpdkContext& ctx);

}  // namespace cachet::perf
