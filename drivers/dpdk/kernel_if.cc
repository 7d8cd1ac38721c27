// Exception interface set-up through the classic SIOCSIF* ioctls.
#include "drivers/dpdk/kernel_if.hh"

#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace cachet::drivers::dpdk {

bool configure_kernel_if(const std::string& ifname, const Mac& mac, uint32_t ip_net,
                         unsigned prefix, std::string* error) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = fmt::format("exception interface {}: socket: {}", ifname, strerror(errno));
    return false;
  }
  auto fail = [&](const char* what) {
    *error = fmt::format("exception interface {}: {}: {}", ifname, what, strerror(errno));
    ::close(fd);
    return false;
  };
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) return fail("read flags");
  short flags = ifr.ifr_flags;
  ifr.ifr_flags = static_cast<short>(flags & ~IFF_UP);
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) return fail("bring down");
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(ifr.ifr_hwaddr.sa_data, mac.data(), 6);
  if (ioctl(fd, SIOCSIFHWADDR, &ifr) != 0) return fail("set MAC");
  auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = ip_net;
  if (ioctl(fd, SIOCSIFADDR, &ifr) != 0) return fail("set address");
  sin->sin_addr.s_addr = htonl(prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix));
  if (ioctl(fd, SIOCSIFNETMASK, &ifr) != 0) return fail("set netmask");
  ifr.ifr_flags = static_cast<short>(flags | IFF_UP | IFF_RUNNING);
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) return fail("bring up");
  ::close(fd);
  return true;
}

}  // namespace cachet::drivers::dpdk
