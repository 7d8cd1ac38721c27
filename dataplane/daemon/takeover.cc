// The takeover wire protocol and the running side's Successor thread. Request: "CACHET-TAKEOVER 1\n". Reply: records of an 8-byte
// header {kind, length} (host order: both ends are this binary's family on one host), a
// descriptor attached to each record but the last, `length` pending bytes after a stream
// record; kind 0 ends the list. Then one byte: 'R' (arena released) or 'E' + a message.
#include "dataplane/daemon/takeover.hh"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/clock.hh"
#include "common/log.hh"

namespace cachet::dataplane::takeover {
namespace {

constexpr char kRequest[] = "CACHET-TAKEOVER 1\n";
enum Kind : uint32_t { kEnd = 0, kTcp = 1, kUdp = 2, kStream = 3 };
struct Record {
  uint32_t kind;
  uint32_t length;
};

bool fill_addr(const std::string& path, sockaddr_un* sa, std::string* error) {
  if (path.size() >= sizeof(sa->sun_path)) {
    *error = fmt::format("takeover socket path '{}' is too long", path);
    return false;
  }
  *sa = {};
  sa->sun_family = AF_UNIX;
  std::memcpy(sa->sun_path, path.c_str(), path.size());
  return true;
}

bool write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = ::recv(fd, c, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool send_record(int fd, Kind kind, int attach, const std::string& pending) {
  Record rec{kind, static_cast<uint32_t>(pending.size())};
  iovec iov{&rec, sizeof rec};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
  if (attach >= 0) {
    mh.msg_control = ctrl;
    mh.msg_controllen = sizeof ctrl;
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &attach, sizeof(int));
  }
  ssize_t w;
  do w = ::sendmsg(fd, &mh, MSG_NOSIGNAL); while (w < 0 && errno == EINTR);
  if (w != static_cast<ssize_t>(sizeof rec)) return false;
  return pending.empty() || write_all(fd, pending.data(), pending.size());
}

// One record; *attached is the descriptor that came with it (-1 if none). Descriptors beyond
// the first, or with a record cut short, are closed: none is left open unowned.
bool recv_record(int fd, Record* rec, int* attached) {
  iovec iov{rec, sizeof *rec};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(4 * sizeof(int))] = {};
  mh.msg_control = ctrl;
  mh.msg_controllen = sizeof ctrl;
  ssize_t r;
  do r = ::recvmsg(fd, &mh, MSG_WAITALL | MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
  const bool whole = r == static_cast<ssize_t>(sizeof *rec);
  *attached = -1;
  for (cmsghdr* cm = r >= 0 ? CMSG_FIRSTHDR(&mh) : nullptr; cm; cm = CMSG_NXTHDR(&mh, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    const size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int got;
      std::memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
      if (whole && *attached < 0) *attached = got;
      else ::close(got);
    }
  }
  return whole;
}

}  // namespace

bool Listener::open(const std::string& path, std::string* error) {
  sockaddr_un sa;
  if (!fill_addr(path, &sa, error)) return false;
  ::unlink(path.c_str());  // ours by name: the admin socket next to it was just bound by us
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  mode_t old = umask(077);
  int rc = ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  umask(old);
  if (rc != 0 || ::listen(fd_, 4) != 0) {
    *error = fmt::format("takeover socket {}: {}", path, std::strerror(errno));
    close();
    return false;
  }
  path_ = path;
  return true;
}

int Listener::wait_request(const std::atomic<bool>& quit) {
  while (!quit.load() && fd_ >= 0) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    char buf[sizeof kRequest - 1];
    timeval tv{5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (read_all(c, buf, sizeof buf) && std::memcmp(buf, kRequest, sizeof buf) == 0) return c;
    ::close(c);  // not a successor speaking our protocol
  }
  return -1;
}

void Listener::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!path_.empty()) ::unlink(path_.c_str());
  path_.clear();
}

bool send_handoff(int fd, drivers::Handoff& h, std::string* error) {
  bool ok = true;
  for (int s : h.tcp_listeners) ok = ok && send_record(fd, kTcp, s, "");
  for (int s : h.udp_sockets) ok = ok && send_record(fd, kUdp, s, "");
  for (auto& st : h.streams) ok = ok && send_record(fd, kStream, st.fd, st.pending);
  ok = ok && send_record(fd, kEnd, -1, "");
  // The successor holds its own copies now (or the handoff failed and they must go anyway).
  for (int s : h.tcp_listeners) ::close(s);
  for (int s : h.udp_sockets) ::close(s);
  for (auto& st : h.streams) ::close(st.fd);
  h = drivers::Handoff{};
  if (!ok) *error = fmt::format("sending the sockets to the successor failed: {}", std::strerror(errno));
  return ok;
}

void send_released(int fd, bool ok, const std::string& why) {
  std::string msg = ok ? std::string("R") : "E" + why;
  write_all(fd, msg.data(), msg.size());
}

int request(const std::string& path, std::string* error) {
  sockaddr_un sa;
  if (!fill_addr(path, &sa, error)) return -1;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      !write_all(fd, kRequest, sizeof kRequest - 1)) {
    *error = fmt::format("cannot reach the running cachetd at {}: {}", path, std::strerror(errno));
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads a stream record's pending bytes. The length is the sender's claim: the buffer grows
// with the bytes that actually arrive, so a wrong length costs no more than what was sent.
bool read_pending(int fd, uint32_t length, std::string* out) {
  constexpr size_t kStep = 64 * 1024;
  while (out->size() < length) {
    const size_t had = out->size();
    out->resize(had + std::min<size_t>(kStep, length - had));
    if (!read_all(fd, out->data() + had, out->size() - had)) return false;
  }
  return true;
}

bool receive_handoff(int fd, drivers::Handoff* h, std::string* error) {
  for (;;) {
    Record rec{};
    int got = -1;
    if (!recv_record(fd, &rec, &got)) {
      *error = "the running cachetd ended the takeover before handing over its sockets";
      return false;
    }
    // Every descriptor that arrived is either handed to the caller or closed here.
    if (rec.kind == kEnd) {
      if (got >= 0) ::close(got);
      return true;
    }
    if (got < 0 || rec.kind > kStream) {
      *error = fmt::format("takeover: malformed record (kind {}, descriptor {})", rec.kind, got);
      if (got >= 0) ::close(got);
      return false;
    }
    if (rec.kind == kTcp) h->tcp_listeners.push_back(got);
    if (rec.kind == kUdp) h->udp_sockets.push_back(got);
    if (rec.kind == kStream) {
      std::string pending;
      if (!read_pending(fd, rec.length, &pending)) {
        *error = "takeover: connection data cut short";
        ::close(got);
        return false;
      }
      h->streams.push_back({got, std::move(pending)});
    }
  }
}

bool wait_released(int fd, int timeout_ms, std::string* error) {
  pollfd p{fd, POLLIN, 0};
  char c = 0;
  if (::poll(&p, 1, timeout_ms) <= 0 || ::recv(fd, &c, 1, 0) != 1) {
    *error = "the running cachetd did not release the arena in time";
    return false;
  }
  if (c == 'R') return true;
  char buf[512];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  *error = "the running cachetd could not release the arena: " +
           std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
  return false;
}

void Successor::start(const std::string& admin_socket, std::vector<drivers::Driver*> stop_these) {
  if (admin_socket.empty()) return;
  std::string error;
  if (!listener_.open(socket_path(admin_socket), &error)) {
    common::log::warn("{}; upgrades in place are off", error);
    return;
  }
  waiter_ = std::thread([this, stop_these] {
    int fd = listener_.wait_request(quit_);
    if (fd < 0) return;
    common::log::debug("takeover t={:.3f} ms: asked", common::mono_ns() / 1e6);
    fd_.store(fd);
    common::log::info("takeover: a successor asked; handing off");
    handing_.begin_handoff();
    for (drivers::Driver* d : stop_these) d->stop();
  });
}

void Successor::join() {
  quit_.store(true);
  if (waiter_.joinable()) waiter_.join();
}

void Successor::complete(const std::function<void()>& release) {
  join();
  int fd = fd_.exchange(-1);
  if (fd < 0) return;
  std::string error;
  common::log::debug("takeover t={:.3f} ms: drained", common::mono_ns() / 1e6);
  drivers::Handoff h = handing_.take_handoff();
  bool ok = send_handoff(fd, h, &error);
  listener_.close();
  release();
  send_released(fd, ok, error);
  common::log::debug("takeover t={:.3f} ms: sent and released", common::mono_ns() / 1e6);
  ::close(fd);
  if (!ok) common::log::error("takeover: {}", error);
}

}  // namespace cachet::dataplane::takeover
