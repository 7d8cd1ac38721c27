// EAL and port set-up (port.hh): the one place that calls rte_eal_init and configures ethdev
// queues, for the product and the load generator alike.
#include "drivers/dpdk/port.hh"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "drivers/dpdk/eal_args.hh"

namespace cachet::drivers::dpdk {

bool eal_init(const char* program, const std::string& args, std::string* error) {
  std::vector<std::string> words = split_args(args, error);
  if (!error->empty()) return false;
  words.insert(words.begin(), program);
  std::vector<char*> argv;
  for (auto& a : words) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(words.size()), argv.data()) < 0) {
    *error = fmt::format("DPDK EAL initialisation failed ({}); check --dpdk-args",
                         rte_strerror(rte_errno));
    return false;
  }
  return true;
}

rte_mempool* pool_create(const std::string& name, unsigned n, int socket, std::string* error) {
  rte_mempool* p = rte_pktmbuf_pool_create(name.c_str(), n, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                           socket);
  if (!p)
    *error = fmt::format("cannot create the mbuf pool {} ({}); give EAL more memory (-m / "
                         "--socket-mem)", name, rte_strerror(rte_errno));
  return p;
}

bool port_start(const PortSetup& s, PortInfo* info, std::string* error) {
  const uint16_t port = s.port;
  rte_eth_dev_info dev{};
  if (int rc = rte_eth_dev_info_get(port, &dev); rc != 0) {
    *error = fmt::format("port {}: cannot read device info ({})", port, rte_strerror(-rc));
    return false;
  }
  info->driver = dev.driver_name ? dev.driver_name : "?";
  info->if_index = dev.if_index;
  if (s.rx_queues > dev.max_rx_queues || s.tx_queues > dev.max_tx_queues) {
    *error = fmt::format("port {} ({}) has {} RX / {} TX queues; {} RX and {} TX are needed",
                         port, info->driver, dev.max_rx_queues, dev.max_tx_queues, s.rx_queues,
                         s.tx_queues);
    return false;
  }
  rte_eth_conf conf{};
  const uint64_t rss = dev.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
  if (s.want_rss && s.rx_queues > 1 && rss) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = rss;
    info->rss = true;
  }
  constexpr uint64_t kCsum = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
  if (s.want_rx_checksum && (dev.rx_offload_capa & kCsum) == kCsum) {
    conf.rxmode.offloads |= kCsum;
    info->rx_checksum = true;
  }
  if (int rc = rte_eth_dev_configure(port, static_cast<uint16_t>(s.rx_queues),
                                     static_cast<uint16_t>(s.tx_queues), &conf); rc != 0) {
    *error = fmt::format("port {}: configure failed ({})", port, rte_strerror(-rc));
    return false;
  }
  uint16_t nrx = s.rx_desc, ntx = s.tx_desc;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx);
  const unsigned socket = static_cast<unsigned>(std::max(rte_eth_dev_socket_id(port), 0));
  for (unsigned q = 0; q < s.rx_queues; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port, static_cast<uint16_t>(q), nrx, socket, nullptr,
                                        s.pool); rc != 0) {
      *error = fmt::format("port {}: RX queue {} setup failed ({})", port, q, rte_strerror(-rc));
      return false;
    }
  }
  for (unsigned q = 0; q < s.tx_queues; ++q) {
    if (int rc = rte_eth_tx_queue_setup(port, static_cast<uint16_t>(q), ntx, socket, nullptr);
        rc != 0) {
      *error = fmt::format("port {}: TX queue {} setup failed ({})", port, q, rte_strerror(-rc));
      return false;
    }
  }
  if (int rc = rte_eth_dev_start(port); rc != 0) {
    *error = fmt::format("port {}: start failed ({})", port, rte_strerror(-rc));
    return false;
  }
  rte_ether_addr mac{};
  rte_eth_macaddr_get(port, &mac);
  std::copy(std::begin(mac.addr_bytes), std::end(mac.addr_bytes), info->mac.begin());
  return true;
}

void port_close(uint16_t port) {
  rte_eth_dev_stop(port);
  rte_eth_dev_close(port);
}

}  // namespace cachet::drivers::dpdk
