// The UDP policy's names and source keys (udp_policy.hh).
#include "drivers/udp_policy.hh"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace cachet::drivers {

const char* udp_drop_name(UdpDrop d) {
  switch (d) {
#define CACHET_X(name, desc) \
  case UdpDrop::name:        \
    return #name;
    CACHET_UDP_DROPS(CACHET_X)
#undef CACHET_X
    case UdpDrop::none:
    case UdpDrop::count:
      break;
  }
  return "none";
}

uint32_t udp_source_key(const void* addr, unsigned len) {
  const auto* sa = static_cast<const sockaddr*>(addr);
  if (len >= sizeof(sockaddr_in) && sa->sa_family == AF_INET)
    return static_cast<const sockaddr_in*>(addr)->sin_addr.s_addr;
  if (len >= sizeof(sockaddr_in6) && sa->sa_family == AF_INET6) {
    uint32_t w[4];
    std::memcpy(w, &static_cast<const sockaddr_in6*>(addr)->sin6_addr, sizeof w);
    return w[0] ^ w[1] ^ w[2] ^ w[3];
  }
  return 0;
}

}  // namespace cachet::drivers
