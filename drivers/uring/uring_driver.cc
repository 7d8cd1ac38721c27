// UringDriver: chooses the kernel features once, opens every worker's ring and sockets, runs
// one thread per worker, and stops them from anywhere (including a signal handler).
#include "drivers/uring/uring_driver.hh"

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/log.hh"
#include "drivers/uring/sockets.hh"
#include "drivers/uring/worker.hh"

namespace cachet::drivers {

using uring::Endpoint;
using uring::Worker;

static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "stop() must be async-signal-safe");

struct UringDriver::Impl {
  UringOptions uopts;
  uring::Shared shared;
  UringFeatures features;
  std::atomic<int> wake_fd{-1};
  std::vector<std::unique_ptr<Worker>> workers;
  uint16_t tcp_port = 0;
  uint16_t udp_port = 0;
  bool opened = false;
  bool ran = false;
  Handoff adopted;  // from a predecessor (adopt()), served instead of new sockets
  bool adopting = false;

  bool open_sockets(std::vector<Endpoint>& eps, bool tcp, std::string* error);
  bool open_admin(const std::string& path, std::string* error);
  void spread_adopted();
};

namespace {

// The CPUs this process may run on, in order; worker i goes to the (i % n)th.
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

}  // namespace

UringDriver::UringDriver(const DriverOptions& opts, const UringOptions& uopts)
    : impl_(std::make_unique<Impl>()) {
  impl_->uopts = uopts;
  impl_->shared.opts = opts;
  impl_->shared.ring_entries = uopts.ring_entries;
  impl_->shared.tcp_buffers = uopts.tcp_buffers;
  impl_->shared.tcp_buffer_size = uopts.tcp_buffer_size;
}

UringDriver::~UringDriver() {
  impl_->workers.clear();
  if (int fd = impl_->wake_fd.exchange(-1); fd >= 0) close(fd);
}

// Every worker gets its own socket per endpoint (SO_REUSEPORT); with port 0 the first one
// picks the port and the others join it.
bool UringDriver::Impl::open_sockets(std::vector<Endpoint>& eps, bool tcp, std::string* error) {
  for (Endpoint& ep : eps) {
    for (auto& w : workers) {
      int fd = tcp ? uring::open_tcp_listener(ep, error) : uring::open_udp_socket(ep, error);
      if (fd < 0) return false;
      if (ep.port() == 0) ep.set_port(uring::bound_port(fd));
      if (tcp)
        w->add_listener(fd);
      else
        w->add_udp(fd);
    }
  }
  uint16_t port = eps.empty() ? 0 : eps.front().port();
  (tcp ? tcp_port : udp_port) = port;
  return true;
}

// The admin socket: a unix stream listener (mode 0600) served by worker 0 like TCP. A stale
// socket file left by a process that died is replaced; any other file is an error.
bool UringDriver::Impl::open_admin(const std::string& path, std::string* error) {
  sockaddr_un sa{};
  if (path.size() >= sizeof(sa.sun_path)) {
    *error = fmt::format("--admin-socket: path '{}' is too long", path);
    return false;
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      *error = fmt::format("--admin-socket: '{}' exists and is not a socket", path);
      return false;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size());
    bool live = connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    close(probe);
    if (live) {
      *error = fmt::format("--admin-socket: another process serves '{}'", path);
      return false;
    }
    unlink(path.c_str());
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  mode_t old = umask(077);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  umask(old);
  if (rc != 0 || listen(fd, 128) != 0) {
    *error = fmt::format("--admin-socket {}: {}", path, std::strerror(errno));
    close(fd);
    return false;
  }
  workers.front()->add_listener(fd, true);
  return true;
}

// Adopted sockets go round-robin over the workers; so do the connections.
void UringDriver::Impl::spread_adopted() {
  size_t n = workers.size(), i = 0;
  for (int fd : adopted.tcp_listeners) {
    if (!tcp_port) tcp_port = uring::bound_port(fd);
    workers[i++ % n]->add_listener(fd);
  }
  for (int fd : adopted.udp_sockets) {
    if (!udp_port) udp_port = uring::bound_port(fd);
    workers[i++ % n]->add_udp(fd);
  }
  for (auto& st : adopted.streams) workers[i++ % n]->adopt_stream(st.fd, std::move(st.pending));
  adopted = Handoff{};
}

void UringDriver::expect_handoff() { impl_->adopting = true; }

void UringDriver::adopt(Handoff h) {
  impl_->adopted = std::move(h);
  impl_->adopting = true;
  if (impl_->opened) impl_->spread_adopted();  // workers exist and do not run yet
}

void UringDriver::begin_handoff() {
  impl_->shared.handoff.store(true, std::memory_order_relaxed);
  int fd = impl_->wake_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one);
    (void)r;
  }
}

Handoff UringDriver::take_handoff() {
  Handoff h;
  std::vector<std::pair<int, std::string>> streams;
  for (auto& w : impl_->workers)
    if (w->handed_off()) w->export_handoff(&h.tcp_listeners, &h.udp_sockets, &streams);
  for (auto& [fd, pending] : streams) h.streams.push_back({fd, std::move(pending)});
  return h;
}

bool UringDriver::open(std::string* error) {
  Impl& m = *impl_;
  const DriverOptions& o = m.shared.opts;
  if (m.opened) {
    *error = "the io_uring driver is already open";
    return false;
  }
  if (o.threads == 0) {
    *error = "-t: at least one worker thread is needed";
    return false;
  }
  if (o.max_conns == 0) {
    *error = "-c: the connection limit must be at least 1";
    return false;
  }
  const unsigned nbuf = m.uopts.tcp_buffers;
  if (nbuf == 0 || nbuf > 32768 || (nbuf & (nbuf - 1)) != 0 || m.uopts.tcp_buffer_size < 512 ||
      m.uopts.ring_entries < 8) {
    *error = "io_uring driver: tcp_buffers must be a power of two <= 32768, buffers >= 512 bytes";
    return false;
  }
  // A successor serves its predecessor's sockets instead of opening its own.
  const bool tcp = !m.adopting && (o.tcp_port != 0 || m.uopts.tcp_any_port);
  const bool udp = m.adopting ? !m.adopted.udp_sockets.empty()
                              : (o.udp_port != 0 || m.uopts.udp_any_port);
  if (!tcp && !udp && o.admin_socket.empty() && !m.adopting) {
    *error = "nothing to serve: TCP (-p) and UDP (-U) are both off";
    return false;
  }
  std::vector<Endpoint> tcp_eps, udp_eps;
  if (tcp && !uring::resolve_endpoints(o.listen, o.tcp_port, SOCK_STREAM, &tcp_eps, error))
    return false;
  if (udp && !uring::resolve_endpoints(o.listen, o.udp_port, SOCK_DGRAM, &udp_eps, error))
    return false;
  for (const Endpoint& ep : tcp_eps)
    if (!uring::check_free(ep, SOCK_STREAM, error)) return false;
  for (const Endpoint& ep : udp_eps)
    if (!uring::check_free(ep, SOCK_DGRAM, error)) return false;

  m.shared.multishot = !m.uopts.force_single_shot && uring::probe_multishot();
  int efd = m.wake_fd.load();  // kept from an open() that failed later on
  if (efd < 0) efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) {
    *error = fmt::format("eventfd failed: {}", std::strerror(errno));
    return false;
  }
  m.shared.wake_fd = efd;
  m.wake_fd.store(efd);

  // The rings are made on a helper thread that then exits: the kernel later sends task work
  // (an EINTR) to every thread that created or used a ring when the ring goes away, and that
  // must not be open()'s caller. Each worker thread enables its ring and exits it itself.
  std::vector<int> cpus = allowed_cpus();
  uring::TaskRun want = uring::TaskRun::deferred;
  auto make_workers = [&] {
    bool made = true;
    std::thread([&] {
      for (unsigned i = 0; i < o.threads && made; ++i) {
        int cpu = o.pin_threads && !cpus.empty() ? cpus[i % cpus.size()] : -1;
        auto w = std::make_unique<Worker>(i, cpu, m.shared);
        made = w->init(want, udp, error);
        want = w->taskrun();  // every worker gets the flavour the first one got
        m.workers.push_back(std::move(w));
      }
    }).join();
    return made;
  };
  bool made = make_workers();
  if (!made && m.shared.multishot) {
    // Buffer rings could not be registered (memory limits, say): single-shot for all.
    common::log::warn("io_uring: {}; falling back to single-shot receives", *error);
    m.workers.clear();
    m.shared.multishot = false;
    want = uring::TaskRun::deferred;
    made = make_workers();
  }
  if (!made || !m.open_sockets(tcp_eps, true, error) || !m.open_sockets(udp_eps, false, error) ||
      (!o.admin_socket.empty() && !m.open_admin(o.admin_socket, error))) {
    m.workers.clear();
    return false;
  }
  if (m.adopting) m.spread_adopted();
  m.features.multishot = m.shared.multishot;
  m.features.taskrun = uring::taskrun_name(want);
  m.opened = true;
  return true;
}

void UringDriver::run(Handler& handler) {
  Impl& m = *impl_;
  if (!m.opened || m.ran) return;
  m.ran = true;
  std::vector<std::thread> threads;
  threads.reserve(m.workers.size());
  for (auto& w : m.workers) {
    Worker* wp = w.get();
    unsigned i = static_cast<unsigned>(threads.size());
    threads.emplace_back([this, wp, i, &handler] {
      pthread_setname_np(pthread_self(), fmt::format("cachet-io-{}", i).substr(0, 15).c_str());
      if (!wp->run(handler)) stop();  // a broken worker stops the rest: no silent half service
    });
  }
  for (auto& t : threads) t.join();
}

void UringDriver::stop() {
  impl_->shared.stop.store(true, std::memory_order_relaxed);
  int fd = impl_->wake_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one);
    (void)r;
  }
}

DriverStats UringDriver::stats() const {
  DriverStats s;
  for (const auto& w : impl_->workers) {
    const uring::Counters& c = w->counters();
    auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
    uint64_t closed = get(c.closed);
    uint64_t accepted = get(c.accepted);
    s.curr_connections += accepted > closed ? accepted - closed : 0;
    s.total_connections += accepted;
    s.rejected_connections += get(c.rejected);
    s.bytes_read += get(c.bytes_read);
    s.bytes_written += get(c.bytes_written);
    s.datagrams_in += get(c.datagrams_in);
    s.datagrams_out += get(c.datagrams_out);
    w->udp_guard().add_to(s.udp_drops);
  }
  return s;
}

unsigned UringDriver::workers() const {
  return impl_->opened ? static_cast<unsigned>(impl_->workers.size()) : 0;
}

uint16_t UringDriver::tcp_port_bound() const { return impl_->tcp_port; }
uint16_t UringDriver::udp_port_bound() const { return impl_->udp_port; }
const UringFeatures& UringDriver::features() const { return impl_->features; }

}  // namespace cachet::drivers
