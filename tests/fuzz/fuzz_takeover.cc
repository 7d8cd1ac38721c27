// Fuzz target: the takeover messages a successor cachetd receives from the process it replaces
// (dataplane/daemon/takeover.cc): records, descriptors passed with them, pending connection
// bytes, then the release byte. The input is a list of sends [ctl][n][n bytes]: ctl bit 0
// attaches a descriptor to the send, bit 1 a second one. Everything is written to a unix
// socket pair and the write side shut before the successor reads, so a read past the end sees
// EOF. Invariants: no crash and no allocation beyond what was sent (a record's length is a
// claim, not a size to allocate); a successful hand-over holds only open, distinct,
// close-on-exec descriptors and no more pending bytes than were sent; a failure says why;
// and no descriptor is left open afterwards that the caller was not given.
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "dataplane/daemon/takeover.hh"
#include "tests/fuzz/harness.hh"

using namespace cachet;

namespace {

size_t open_fds() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/fd");
  FUZZ_EXPECT(d != nullptr, "cannot list /proc/self/fd");
  while (readdir(d)) ++n;
  closedir(d);
  return n;
}

// One send of `bytes` with `nfds` descriptors of /dev/null attached.
void send_chunk(int fd, std::string_view bytes, int nfds) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char ctrl[CMSG_SPACE(2 * sizeof(int))] = {};
  int fds[2] = {-1, -1};
  if (nfds > 0) {
    for (int i = 0; i < nfds; ++i) fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    mh.msg_control = ctrl;
    mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    std::memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
  }
  const ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
  FUZZ_EXPECT(w == static_cast<ssize_t>(bytes.size()), "send of {} bytes: {}", bytes.size(), w);
  for (int f : fds)
    if (f >= 0) close(f);  // the receiver holds its own copy now
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const size_t fds_before = open_fds();
  int sv[2];
  FUZZ_EXPECT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
  size_t sent = 0;
  for (size_t pos = 0; pos + 2 <= size;) {
    const uint8_t ctl = data[pos];
    const size_t n = std::min<size_t>(data[pos + 1], size - pos - 2);
    if (n > 0) send_chunk(sv[0], {reinterpret_cast<const char*>(data + pos + 2), n},
                          (ctl & 1) + (ctl >> 1 & 1));
    sent += n;
    pos += 2 + n;
  }
  shutdown(sv[0], SHUT_WR);

  drivers::Handoff h;
  std::string error;
  const bool ok = dataplane::takeover::receive_handoff(sv[1], &h, &error) &&
                  dataplane::takeover::wait_released(sv[1], 0, &error);
  FUZZ_EXPECT(ok || !error.empty(), "takeover failed without saying why");
  std::set<int> given;
  size_t pending = 0;
  auto take = [&](int fd) {
    FUZZ_EXPECT(fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC, "descriptor {} handed over "
                 "closed or without close-on-exec", fd);
    FUZZ_EXPECT(given.insert(fd).second, "descriptor {} handed over twice", fd);
  };
  for (int fd : h.tcp_listeners) take(fd);
  for (int fd : h.udp_sockets) take(fd);
  for (const auto& s : h.streams) {
    take(s.fd);
    pending += s.pending.size();
  }
  FUZZ_EXPECT(pending <= sent, "{} pending bytes from {} sent", pending, sent);
  for (int fd : given) close(fd);
  close(sv[0]);
  close(sv[1]);
  const size_t fds_after = open_fds();
  FUZZ_EXPECT(fds_after == fds_before, "{} descriptors open after the takeover, {} before "
               "({}: {})", fds_after, fds_before, ok ? "ok" : "failed", error);
  return 0;
}
