// DPDK driver setup: EAL and ports through port.hh (one queue pair per lcore, RSS over UDP when
// the device has it), mbuf pools per socket, per-core UDP port steering, the exception port's
// kernel interface, stats, teardown.
#include <net/if.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_flow.h>
#include <rte_lcore.h>

#include <fmt/format.h>

#include "common/log.hh"
#include "drivers/dpdk/impl.hh"
#include "drivers/dpdk/kernel_if.hh"
#include "drivers/dpdk/port.hh"

namespace cachet::drivers::dpdk {
namespace {

constexpr uint16_t kRxDesc = 1024;
constexpr uint16_t kTxDesc = 1024;

// The paper gives each thread its own UDP port: steer port udp_port + i to queue i with
// rte_flow when the device validates such rules. Returns false (nothing installed) otherwise;
// RSS then spreads the flows and any lcore answers any port.
bool steer_ports(uint16_t port, uint32_t ip, uint16_t udp_port, unsigned queues) {
  if (queues < 2) return false;
  for (unsigned q = 0; q < queues; ++q) {
    rte_flow_attr attr{};
    attr.ingress = 1;
    rte_flow_item_ipv4 ip_spec{}, ip_mask{};
    ip_spec.hdr.dst_addr = ip;
    ip_mask.hdr.dst_addr = 0xffffffffu;
    rte_flow_item_udp udp_spec{}, udp_mask{};
    udp_spec.hdr.dst_port = rte_cpu_to_be_16(static_cast<uint16_t>(udp_port + q));
    udp_mask.hdr.dst_port = 0xffff;
    rte_flow_item pattern[] = {
        {RTE_FLOW_ITEM_TYPE_ETH, nullptr, nullptr, nullptr},
        {RTE_FLOW_ITEM_TYPE_IPV4, &ip_spec, nullptr, &ip_mask},
        {RTE_FLOW_ITEM_TYPE_UDP, &udp_spec, nullptr, &udp_mask},
        {RTE_FLOW_ITEM_TYPE_END, nullptr, nullptr, nullptr},
    };
    rte_flow_action_queue to{static_cast<uint16_t>(q)};
    rte_flow_action actions[] = {{RTE_FLOW_ACTION_TYPE_QUEUE, &to},
                                 {RTE_FLOW_ACTION_TYPE_END, nullptr}};
    rte_flow_error err{};
    if (rte_flow_validate(port, &attr, pattern, actions, &err) != 0 ||
        !rte_flow_create(port, &attr, pattern, actions, &err)) {
      if (q > 0) rte_flow_flush(port, &err);  // all or nothing
      return false;
    }
  }
  return true;
}

}  // namespace

rte_mempool* DpdkDriver::Impl::pool_for_lcore(unsigned lcore) const {
  unsigned socket = rte_lcore_to_socket_id(lcore);
  rte_mempool* p = socket < pools.size() ? pools[socket] : nullptr;
  return p ? p : pools[0];
}

rte_mempool* DpdkDriver::Impl::pool_for_port(uint16_t port) const {
  const int socket = rte_eth_dev_socket_id(port);
  rte_mempool* p = socket >= 0 && static_cast<size_t>(socket) < pools.size()
                       ? pools[static_cast<size_t>(socket)]
                       : nullptr;
  return p ? p : pool_for_lcore(rte_get_main_lcore());
}

DpdkDriver::DpdkDriver(const Options& opts, uint16_t udp_port, const UdpPolicy& policy,
                       unsigned worker_base)
    : impl_(std::make_unique<Impl>()) {
  impl_->opts = opts;
  impl_->udp_port = udp_port;
  impl_->policy = policy;
  impl_->worker_base = worker_base;
}

DpdkDriver::~DpdkDriver() {
  Impl& d = *impl_;
  if (d.port_started) port_close(d.opts.port);
  if (d.exc_started) port_close(static_cast<uint16_t>(d.exc_port));
  if (d.eal_ready) rte_eal_cleanup();
}

bool DpdkDriver::open(std::string* error) {
  Impl& d = *impl_;
  if (d.opts.ip.empty()) {
    *error = "--driver dpdk needs --dpdk-ip A.B.C.D/NN (the address Cachet owns on the port)";
    return false;
  }
  if (!parse_ipv4_cidr(d.opts.ip, &d.me.ip, &d.prefix, error)) return false;
  if (d.udp_port == 0) {
    *error = "--driver dpdk serves memcache over UDP: give it a port with -U";
    return false;
  }
  if (!eal_init("cachetd", d.opts.eal_args, error)) return false;
  d.eal_ready = true;
  d.n_workers = rte_lcore_count();
  uint16_t nports = rte_eth_dev_count_avail();
  if (d.opts.port >= nports || (d.exc_port = d.opts.exception_port) >= nports) {
    *error = fmt::format("--dpdk-port {} / --dpdk-exception-port {}: EAL found {} port(s)",
                         d.opts.port, d.opts.exception_port, nports);
    return false;
  }
  if (d.exc_port == d.opts.port) {
    *error = "--dpdk-exception-port must differ from --dpdk-port";
    return false;
  }
  // One pool per socket that has an lcore: RX rings, replies and in-flight bursts.
  const unsigned per_lcore = kRxDesc + kTxDesc * 2 + 4 * kBurst + 512;
  unsigned lcore;
  RTE_LCORE_FOREACH(lcore) {
    unsigned socket = rte_lcore_to_socket_id(lcore);
    if (socket >= d.pools.size() || d.pools[socket]) continue;
    d.pools[socket] = pool_create(fmt::format("cachet_pool_{}", socket),
                                  per_lcore * d.n_workers + 4096, static_cast<int>(socket), error);
    if (!d.pools[socket]) return false;
  }
  PortSetup main_port{d.opts.port, d.n_workers, d.n_workers, d.pool_for_port(d.opts.port), true,
                      true, kRxDesc, kTxDesc};
  PortInfo info;
  if (!port_start(main_port, &info, error)) return false;
  d.port_started = true;
  d.rx_csum = info.rx_checksum;
  d.me.mac = info.mac;
  d.me.udp_port = d.udp_port;
  d.me.udp_ports = static_cast<uint16_t>(d.n_workers);
  d.steering = steer_ports(d.opts.port, d.me.ip, d.udp_port, d.n_workers)
                   ? "rte_flow per-core UDP ports"
                   : (info.rss ? "RSS" : "one queue");
  if (d.exc_port >= 0) {
    const uint16_t ep = static_cast<uint16_t>(d.exc_port);
    PortSetup exc{ep, 1, d.n_workers, d.pool_for_port(ep), false, false, kRxDesc, kTxDesc};
    PortInfo einfo;
    if (!port_start(exc, &einfo, error)) return false;
    d.exc_started = true;
    char name[IF_NAMESIZE] = {};
    if (einfo.if_index == 0 || !if_indextoname(einfo.if_index, name)) {
      *error = fmt::format("--dpdk-exception-port {} ({}) has no kernel interface; use a "
                           "net_tap or virtio_user vdev", ep, einfo.driver);
      return false;
    }
    d.exc_ifname = name;
    // The kernel side answers for the same address and MAC, so peers see one host.
    if (!configure_kernel_if(d.exc_ifname, d.me.mac, d.me.ip, d.prefix, error)) return false;
  }
  d.stats = std::make_unique<LcoreStats[]>(d.n_workers);
  for (unsigned i = 0; i < d.n_workers; ++i)
    d.guards.push_back(std::make_unique<UdpGuard>(d.policy, rte_get_tsc_hz()));
  common::log::info("dpdk: {}", describe());
  return true;
}

std::string DpdkDriver::worker_stats_prefix(unsigned w) const {
  return fmt::format("dpdk:lcore{}:", w);
}

void DpdkDriver::run(Handler& handler) {
  impl_->handler = &handler;
  rte_eal_mp_remote_launch([](void* arg) { return static_cast<Impl*>(arg)->lcore_main(); },
                           impl_.get(), CALL_MAIN);
  rte_eal_mp_wait_lcore();
}

void DpdkDriver::stop() { impl_->quit.store(true, std::memory_order_relaxed); }

unsigned DpdkDriver::workers() const { return impl_->n_workers; }

std::vector<unsigned> DpdkDriver::poll_cpus() const {
  std::vector<unsigned> out;
  unsigned lcore;
  RTE_LCORE_FOREACH(lcore) out.push_back(rte_lcore_to_cpu_id(static_cast<int>(lcore)));
  return out;
}

std::string DpdkDriver::exception_ifname() const { return impl_->exc_ifname; }

std::string DpdkDriver::describe() const {
  const Impl& d = *impl_;
  const auto& m = d.me.mac;
  return fmt::format(
      "port {} mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} ip {}/{} udp ports {}-{} lcores {}"
      " steering {}{}{}",
      d.opts.port, m[0], m[1], m[2], m[3], m[4], m[5], ipv4_to_string(d.me.ip), d.prefix,
      d.udp_port, d.udp_port + d.n_workers - 1, d.n_workers, d.steering,
      d.rx_csum ? " rx-checksum-offload" : "",
      d.exc_port >= 0 ? fmt::format(" exception port {} ({})", d.exc_port, d.exc_ifname) : "");
}

DriverStats DpdkDriver::stats() const {
  DriverStats s;
  for (unsigned i = 0; i < impl_->n_workers && impl_->stats; ++i) {
    const LcoreStats& l = impl_->stats[i];
    s.bytes_read += l.bytes_read.load(std::memory_order_relaxed);
    s.bytes_written += l.bytes_written.load(std::memory_order_relaxed);
    s.datagrams_in += l.datagrams.load(std::memory_order_relaxed);
    s.datagrams_out += l.replies.load(std::memory_order_relaxed);
    impl_->guards[i]->add_to(s.udp_drops);
  }
  return s;
}

void DpdkDriver::extra_stats(std::vector<std::pair<std::string, uint64_t>>& out) const {
  const double us_per_tsc = 1e6 / static_cast<double>(rte_get_tsc_hz());
  auto us = [us_per_tsc](const std::atomic<uint64_t>& tsc) {
    return static_cast<uint64_t>(static_cast<double>(tsc.load(std::memory_order_relaxed)) *
                                 us_per_tsc);
  };
  for (unsigned i = 0; i < impl_->n_workers && impl_->stats; ++i) {
    const LcoreStats& l = impl_->stats[i];
    std::string p = fmt::format("dpdk:lcore{}:", i);
#define CACHET_X(n) out.emplace_back(p + #n, l.n.load(std::memory_order_relaxed));
    CACHET_LCORE_COUNTERS(CACHET_X)
#undef CACHET_X
    out.emplace_back(p + "busy_us", us(l.busy_tsc));
    out.emplace_back(p + "idle_us", us(l.idle_tsc));
    for (size_t r = 1; r < l.drops.size(); ++r)
      out.emplace_back(p + "drop_" + drop_name(static_cast<Drop>(r)),
                       l.drops[r].load(std::memory_order_relaxed));
  }
}

}  // namespace cachet::drivers::dpdk
