// Options of the DPDK driver, in one table: name, default, flag, description. No DPDK header
// here, so cachetd's flag parser and help can include it in every build.
#pragma once

#include <cstdint>
#include <string>

namespace cachet::drivers::dpdk {

// X(type, name, default, flag, description)
#define CACHET_DPDK_OPTIONS(X)                                                                   \
  X(std::string, eal_args, "", "--dpdk-args",                                                    \
    "EAL arguments, passed through untouched (e.g. \"-l 0 --no-pci --vdev=net_tap0\")")          \
  X(std::string, ip, "", "--dpdk-ip", "our IPv4 address on the port, A.B.C.D/NN (required)")     \
  X(uint16_t, port, 0, "--dpdk-port", "ethdev port id that serves memcache")                     \
  X(int, exception_port, -1, "--dpdk-exception-port",                                            \
    "ethdev port id of the kernel exception path (a tap or virtio_user vdev); -1 = none")        \
  X(bool, no_udp_checksum, false, "--dpdk-no-udp-checksum",                                     \
    "send UDP replies without a checksum (allowed in IPv4; saves time on large values)")

struct Options {
#define CACHET_X(type, name, def, flag, desc) type name = def;
  CACHET_DPDK_OPTIONS(CACHET_X)
#undef CACHET_X
};

}  // namespace cachet::drivers::dpdk
