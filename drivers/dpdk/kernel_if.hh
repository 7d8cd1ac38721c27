// Configures the kernel side of the exception path: the tap's MAC and IPv4 address become
// Cachet's, so TCP and everything the dataplane does not serve is answered by the kernel.
#pragma once

#include <cstdint>
#include <string>

#include "drivers/dpdk/packet.hh"

namespace cachet::drivers::dpdk {

// Sets MAC, address/prefix and brings the interface up. Needs CAP_NET_ADMIN.
bool configure_kernel_if(const std::string& ifname, const Mac& mac, uint32_t ip_net,
                         unsigned prefix, std::string* error);

}  // namespace cachet::drivers::dpdk
