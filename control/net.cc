// Socket helpers: every descriptor close-on-exec, every wait bounded by a deadline.
#include "control/net.hh"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "control/process.hh"

namespace cachet::control {

namespace {

bool unix_addr(const std::string& path, sockaddr_un* a, std::string* error) {
  *a = {};
  a->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a->sun_path) {
    *error = fmt::format("socket path '{}' is {} (at most {} bytes)", path,
                         path.empty() ? "empty" : "too long", sizeof a->sun_path - 1);
    return false;
  }
  std::memcpy(a->sun_path, path.data(), path.size());
  return true;
}

// Waits until fd is ready for `events` or the deadline passes.
bool wait_fd(int fd, short events, int64_t deadline_ms) {
  while (true) {
    int64_t left = deadline_ms - now_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

int finish_connect(int fd, const sockaddr* sa, socklen_t len, int timeout_ms, std::string what,
                   std::string* error) {
  if (connect(fd, sa, len) == 0) return fd;
  if (errno != EINPROGRESS && errno != EAGAIN) {
    int e = errno;
    *error = fmt::format("cannot connect to {}: {}", what, std::strerror(e));
    close(fd);
    errno = e;
    return -1;
  }
  if (!wait_fd(fd, POLLOUT, now_ms() + timeout_ms)) {
    *error = fmt::format("cannot connect to {}: timed out after {} ms", what, timeout_ms);
    close(fd);
    errno = ETIMEDOUT;
    return -1;
  }
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err != 0) {
    *error = fmt::format("cannot connect to {}: {}", what, std::strerror(err));
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

}  // namespace

int listen_unix(const std::string& path, std::string* error) {
  sockaddr_un a;
  if (!unix_addr(path, &a, error)) return -1;
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      *error = fmt::format("{} exists and is not a socket", path);
      return -1;
    }
    std::string ignored;
    int probe = connect_unix(path, 500, &ignored);
    if (probe >= 0) {
      close(probe);
      *error = fmt::format("another process already serves {}", path);
      return -1;
    }
    unlink(path.c_str());  // stale: its owner is gone
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = fmt::format("socket: {}", std::strerror(errno));
    return -1;
  }
  mode_t old = umask(0177);  // the socket is created 0600: no window with a wider mode
  int r = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  int e = errno;
  umask(old);
  if (r != 0 || listen(fd, 64) != 0) {
    if (r == 0) e = errno;
    *error = fmt::format("cannot listen on {}: {}", path, std::strerror(e));
    close(fd);
    return -1;
  }
  chmod(path.c_str(), 0600);
  return fd;
}

int connect_unix(const std::string& path, int timeout_ms, std::string* error) {
  sockaddr_un a;
  if (!unix_addr(path, &a, error)) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = fmt::format("socket: {}", std::strerror(errno));
    return -1;
  }
  return finish_connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a, timeout_ms, path, error);
}

int connect_tcp(const std::string& host, uint16_t port, int timeout_ms, std::string* error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* res = nullptr;
  int r = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (r != 0 || !res) {
    *error = fmt::format("bad address {}: {}", host, gai_strerror(r));
    return -1;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = fmt::format("socket: {}", std::strerror(errno));
    freeaddrinfo(res);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fd = finish_connect(fd, res->ai_addr, res->ai_addrlen, timeout_ms,
                      fmt::format("{}:{}", host, port), error);
  freeaddrinfo(res);
  return fd;
}

int listen_loopback_tcp(uint16_t port, std::string* error) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = fmt::format("socket: {}", std::strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 64) != 0) {
    *error = fmt::format("cannot listen on 127.0.0.1:{}: {}", port, std::strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

bool write_all(int fd, std::string_view data, int64_t deadline_ms, std::string* error) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_fd(fd, POLLOUT, deadline_ms)) {
        *error = "timed out writing";
        return false;
      }
      continue;
    }
    *error = fmt::format("write: {}", std::strerror(errno));
    return false;
  }
  return true;
}

long read_until(int fd, std::string* buf, std::string_view term, int64_t deadline_ms,
                bool allow_eof, std::string* error) {
  size_t scanned = 0;
  while (true) {
    size_t from = scanned >= term.size() ? scanned - term.size() + 1 : 0;
    size_t at = buf->find(term, from);
    if (at != std::string::npos) return static_cast<long>(at + term.size());
    scanned = buf->size();
    char chunk[16384];
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf->append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      if (allow_eof) return static_cast<long>(buf->size());
      *error = "connection closed before the reply was complete";
      return -1;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_fd(fd, POLLIN, deadline_ms)) {
        *error = "timed out waiting for a reply";
        return -1;
      }
      continue;
    }
    *error = fmt::format("read: {}", std::strerror(errno));
    return -1;
  }
}

bool make_dirs(const std::string& dir, std::string* error) {
  if (dir.empty()) return true;
  std::string path;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    path = dir.substr(0, pos);
    if (path.empty()) continue;
    if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      *error = fmt::format("cannot create directory {}: {}", path, std::strerror(errno));
      return false;
    }
  }
  return true;
}

}  // namespace cachet::control
