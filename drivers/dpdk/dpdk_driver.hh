// The kernel-bypass driver: DPDK EAL, one ethdev port with one RX/TX queue pair per lcore, a
// pinned poll loop per lcore answering ARP, ICMP echo and memcache over UDP, and an optional
// exception port that hands everything else to the kernel. No DPDK header leaks from here.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "drivers/dpdk/eal_args.hh"
#include "drivers/dpdk/options.hh"
#include "drivers/driver.hh"

namespace cachet::drivers::dpdk {

class DpdkDriver final : public Driver {
 public:
  // udp_port: the first memcache port (-U); each lcore also owns udp_port + its index.
  // policy: the UDP policy every driver applies; worker_base: the Handler's id of lcore 0.
  DpdkDriver(const Options& opts, uint16_t udp_port, const UdpPolicy& policy,
             unsigned worker_base = 0);
  ~DpdkDriver() override;

  // Initialises EAL from opts.eal_args and starts the port. Call once per process.
  bool open(std::string* error) override;
  void run(Handler& handler) override;
  void stop() override;
  DriverStats stats() const override;
  unsigned workers() const override;
  void extra_stats(std::vector<std::pair<std::string, uint64_t>>& out) const override;
  std::vector<unsigned> poll_cpus() const override;
  std::string worker_stats_prefix(unsigned w) const override;

  // The kernel interface of the exception port ("" when there is none), for wiring TCP.
  std::string exception_ifname() const;
  std::string describe() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};


}  // namespace cachet::drivers::dpdk
