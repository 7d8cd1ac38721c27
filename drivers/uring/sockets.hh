// Listen addresses and the sockets each worker serves: parsing memcached's -l list, resolving
// it, and opening SO_REUSEPORT TCP listeners and UDP sockets. Set-up only, never the hot path.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cachet::drivers::uring {

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string text() const;  // "127.0.0.1:11211", "[::1]:11211"
  uint16_t port() const;
  void set_port(uint16_t port);
};

// Resolves memcached's -l list: comma separated hosts or addresses, each optionally with its
// own port ("10.0.0.1:11311", "[::1]:11311"); empty or "*" means every interface. A host may
// yield several endpoints. On failure returns false with *error naming the item.
bool resolve_endpoints(std::string_view list, uint16_t default_port, int socktype,
                       std::vector<Endpoint>* out, std::string* error);

// Fails (false, *error naming the address) when another socket already serves ep; a
// SO_REUSEPORT group of the same user would otherwise silently share the port with it.
bool check_free(const Endpoint& ep, int socktype, std::string* error);

// A listening TCP socket with SO_REUSEADDR, SO_REUSEPORT and TCP_NODELAY (inherited by the
// accepted sockets). Returns the fd, or -1 with *error set.
int open_tcp_listener(const Endpoint& ep, std::string* error);

// A bound UDP socket with SO_REUSEPORT. Returns the fd, or -1 with *error set.
int open_udp_socket(const Endpoint& ep, std::string* error);

// The local port fd is bound to.
uint16_t bound_port(int fd);

}  // namespace cachet::drivers::uring
