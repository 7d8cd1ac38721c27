// Listen-address parsing and socket set-up for the io_uring driver.
#include "drivers/uring/sockets.hh"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace cachet::drivers::uring {

namespace {

constexpr int kBacklog = 1024;  // memcached's default (-b)

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits "host", "host:port", "[v6]" or "[v6]:port"; a bare IPv6 address has no port.
bool split_item(std::string_view item, std::string* host, std::string_view* port,
                std::string* error) {
  *port = {};
  if (!item.empty() && item.front() == '[') {
    size_t close = item.find(']');
    if (close == std::string_view::npos) {
      *error = fmt::format("-l: '{}' lacks the closing ']'", item);
      return false;
    }
    *host = std::string(item.substr(1, close - 1));
    std::string_view rest = item.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        *error = fmt::format("-l: unexpected '{}' after ']' in '{}'", rest, item);
        return false;
      }
      *port = rest.substr(1);
    }
    return true;
  }
  if (std::count(item.begin(), item.end(), ':') == 1) {
    size_t colon = item.find(':');
    *host = std::string(item.substr(0, colon));
    *port = item.substr(colon + 1);
    return true;
  }
  *host = std::string(item);
  return true;
}

int fail(std::string* error, const Endpoint& ep, const char* what, const char* proto, int fd) {
  int e = errno;
  *error = fmt::format("cannot listen on {} ({}): {} failed: {}", ep.text(), proto, what,
                       std::strerror(e));
  if (fd >= 0) close(fd);
  errno = e;
  return -1;
}

int set_flag(int fd, int level, int name) {
  int one = 1;
  return setsockopt(fd, level, name, &one, sizeof one);
}

}  // namespace

std::string Endpoint::text() const {
  char host[NI_MAXHOST];
  char serv[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof host, serv,
                  sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return "?";
  if (addr.ss_family == AF_INET6) return fmt::format("[{}]:{}", host, serv);
  return fmt::format("{}:{}", host, serv);
}

uint16_t Endpoint::port() const {
  if (addr.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

void Endpoint::set_port(uint16_t port) {
  if (addr.ss_family == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(port);
  else
    reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(port);
}

bool resolve_endpoints(std::string_view list, uint16_t default_port, int socktype,
                       std::vector<Endpoint>* out, std::string* error) {
  out->clear();
  size_t pos = 0;
  do {
    size_t comma = list.find(',', pos);
    std::string_view item =
        trim(list.substr(pos, comma == std::string_view::npos ? list.npos : comma - pos));
    pos = comma == std::string_view::npos ? list.size() + 1 : comma + 1;

    std::string host;
    std::string_view port_text;
    if (!split_item(item, &host, &port_text, error)) return false;
    unsigned port = default_port;
    if (!port_text.empty()) {
      auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
      if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
        *error = fmt::format("-l: '{}' is not a port number (0-65535) in '{}'", port_text, item);
        return false;
      }
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string serv = std::to_string(port);
    const char* node = host.empty() || host == "*" ? nullptr : host.c_str();
    if (int rc = getaddrinfo(node, serv.c_str(), &hints, &res); rc != 0) {
      *error = fmt::format("-l: cannot resolve '{}': {}", item, gai_strerror(rc));
      return false;
    }
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
      Endpoint ep;
      std::memcpy(&ep.addr, ai->ai_addr, ai->ai_addrlen);
      ep.len = ai->ai_addrlen;
      bool dup = std::any_of(out->begin(), out->end(), [&](const Endpoint& o) {
        return o.len == ep.len && std::memcmp(&o.addr, &ep.addr, ep.len) == 0;
      });
      if (!dup) out->push_back(ep);
    }
    freeaddrinfo(res);
  } while (pos <= list.size());
  if (out->empty()) {
    *error = fmt::format("-l: '{}' names no address", list);
    return false;
  }
  return true;
}

bool check_free(const Endpoint& ep, int socktype, std::string* error) {
  if (ep.port() == 0) return true;
  int fd = socket(ep.addr.ss_family, socktype | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;  // open_* reports why sockets of this family fail
  const char* proto = socktype == SOCK_STREAM ? "tcp" : "udp";
  // TIME_WAIT leftovers are fine for TCP (SO_REUSEADDR); a listener is not.
  if (socktype == SOCK_STREAM) set_flag(fd, SOL_SOCKET, SO_REUSEADDR);
  if (ep.addr.ss_family == AF_INET6) set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0) {
    fail(error, ep, "bind", proto, fd);
    return false;
  }
  close(fd);
  return true;
}

int open_tcp_listener(const Endpoint& ep, std::string* error) {
  int fd = socket(ep.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(error, ep, "socket", "tcp", -1);
  if (set_flag(fd, SOL_SOCKET, SO_REUSEADDR) != 0 || set_flag(fd, SOL_SOCKET, SO_REUSEPORT) != 0 ||
      set_flag(fd, IPPROTO_TCP, TCP_NODELAY) != 0)
    return fail(error, ep, "setsockopt", "tcp", fd);
  if (ep.addr.ss_family == AF_INET6 && set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY) != 0)
    return fail(error, ep, "setsockopt(IPV6_V6ONLY)", "tcp", fd);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0)
    return fail(error, ep, "bind", "tcp", fd);
  if (listen(fd, kBacklog) != 0) return fail(error, ep, "listen", "tcp", fd);
  return fd;
}

int open_udp_socket(const Endpoint& ep, std::string* error) {
  int fd = socket(ep.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(error, ep, "socket", "udp", -1);
  if (set_flag(fd, SOL_SOCKET, SO_REUSEPORT) != 0) return fail(error, ep, "setsockopt", "udp", fd);
  if (ep.addr.ss_family == AF_INET6 && set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY) != 0)
    return fail(error, ep, "setsockopt(IPV6_V6ONLY)", "udp", fd);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0)
    return fail(error, ep, "bind", "udp", fd);
  return fd;
}

uint16_t bound_port(int fd) {
  Endpoint ep;
  ep.len = sizeof ep.addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ep.addr), &ep.len) != 0) return 0;
  return ep.port();
}

}  // namespace cachet::drivers::uring
