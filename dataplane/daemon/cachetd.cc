// cachetd, the dataplane executable: memcached-style flags, the store, the Server, and the
// io_uring driver serving them until SIGINT or SIGTERM.
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include "common/log.hh"
#include "common/clock.hh"
#include "dataplane/daemon/flags.hh"
#include "dataplane/daemon/takeover.hh"
#include "dataplane/server.hh"
#include "dataplane/version.hh"
#include "drivers/uring/uring_driver.hh"
#include "store/store.hh"
#ifdef CACHET_HAVE_DPDK
#include "drivers/dpdk/dpdk_driver.hh"
#endif

namespace {

using namespace cachet;
namespace takeover = dataplane::takeover;

constexpr int kExitUsage = 64;  // EX_USAGE, as memcached for bad flags
constexpr int kExitIncompatible = 3;  // a successor refused the arena it was to keep

// The running drivers (at most two: DPDK and the kernel path beside it).
std::atomic<drivers::Driver*> g_drivers[2] = {nullptr, nullptr};

void on_stop_signal(int) {
  for (auto& d : g_drivers)
    if (drivers::Driver* p = d.load()) p->stop();  // async-signal-safe by contract
}

void install_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, nullptr);
}

common::log::Level level_for(int verbosity) {
  switch (verbosity) {
    case 0: return common::log::Level::warn;
    case 1: return common::log::Level::info;
    case 2: return common::log::Level::debug;
    default: return common::log::Level::trace;
  }
}

// Each connection is a descriptor: raise the soft limit (and the hard one when allowed) to
// cover -c plus sockets and rings, as memcached does.
void raise_fd_limit(const dataplane::Settings& s) {
  const rlim_t need = rlim_t{s.net.max_conns} + 16 * rlim_t{s.net.threads} + 64;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need) return;
  rlimit want = rl;
  want.rlim_cur = need;
  if (rl.rlim_max < need) want.rlim_max = need;
  if (setrlimit(RLIMIT_NOFILE, &want) == 0) return;
  want.rlim_max = rl.rlim_max;
  want.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &want);
  common::log::warn("open files limit is {} (hard limit), below the {} that -c {} needs",
                    rl.rlim_max, need, s.net.max_conns);
}

// Upgrade in place, successor's side: refuse an arena we cannot keep before disturbing the
// running process, then take its sockets and connections and wait until it let the arena go.
// Returns 0 when there is nothing to take over, else an exit status on failure.
int take_over(const dataplane::Settings& settings, drivers::UringDriver& driver) {
  if (settings.takeover.empty()) return 0;
  std::string error;
  if (!store::Store::probe(settings.store, &error)) {
    std::fprintf(stderr, "cachetd: refusing to take over: %s\n", error.c_str());
    return kExitIncompatible;
  }
  int pred = takeover::request(takeover::socket_path(settings.takeover), &error);
  if (pred < 0) {
    std::fprintf(stderr, "cachetd: %s\n", error.c_str());
    return 1;
  }
  drivers::Handoff h;
  common::log::debug("takeover t={:.3f} ms: requested", common::mono_ns() / 1e6);
  bool ok = takeover::receive_handoff(pred, &h, &error) &&
            takeover::wait_released(pred, 10'000, &error);
  common::log::debug("takeover t={:.3f} ms: received, arena free", common::mono_ns() / 1e6);
  close(pred);
  if (!ok) {
    std::fprintf(stderr, "cachetd: takeover failed: %s\n", error.c_str());
    return 1;
  }
  common::log::info("takeover: {} listeners, {} UDP sockets, {} connections", h.tcp_listeners.size(),
                    h.udp_sockets.size(), h.streams.size());
  driver.adopt(std::move(h));
  return 0;
}

// Upgrade in place, running side: waits (on a helper thread) for a successor on the takeover
// socket next to the admin socket, and asks the drivers to hand off when one comes.
class Successor {
 public:
  Successor(const std::string& admin_socket, std::vector<drivers::Driver*> stop_these,
            drivers::UringDriver& handing)
      : handing_(handing) {
    if (admin_socket.empty()) return;
    std::string error;
    if (!listener_.open(takeover::socket_path(admin_socket), &error)) {
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
  ~Successor() { join(); }
  void join() {
    quit_.store(true);
    if (waiter_.joinable()) waiter_.join();
  }
  bool asked() const { return fd_.load() >= 0; }
  // After every driver returned: hands the sockets over, then (once `release` let the arena
  // go) tells the successor to attach it.
  template <class Release>
  void complete(Release&& release) {
    join();
    int fd = fd_.exchange(-1);
    if (fd < 0) return;
    std::string error;
    common::log::debug("takeover t={:.3f} ms: drained", common::mono_ns() / 1e6);
    drivers::Handoff h = handing_.take_handoff();
    bool ok = takeover::send_handoff(fd, h, &error);
    listener_.close();
    release();
    takeover::send_released(fd, ok, error);
    common::log::debug("takeover t={:.3f} ms: sent and released", common::mono_ns() / 1e6);
    close(fd);
    if (!ok) common::log::error("takeover: {}", error);
  }

 private:
  drivers::UringDriver& handing_;
  takeover::Listener listener_;
  std::atomic<bool> quit_{false};
  std::atomic<int> fd_{-1};
  std::thread waiter_;
};

int run_uring(dataplane::Settings& settings) {
  std::string error;
  const uint64_t start_ns = common::mono_ns();
  settings.store.workers = settings.net.threads;
  drivers::UringDriver driver(settings.net);
  // A successor makes its rings and workers before it asks: the predecessor stops serving
  // only for the handoff itself.
  if (!settings.takeover.empty()) driver.expect_handoff();
  if (!driver.open(&error)) {
    std::fprintf(stderr, "cachetd: %s\n", error.c_str());
    return 1;
  }
  if (int rc = take_over(settings, driver)) return rc;
  std::unique_ptr<store::Store> store = store::Store::open(settings.store, &error);
  if (!store) {
    std::fprintf(stderr, "cachetd: %s\n", error.c_str());
    return 1;
  }
  auto server = std::make_unique<dataplane::Server>(*store, settings);
  server->set_driver(&driver);
  g_drivers[0].store(&driver);
  install_signals();

  const drivers::UringFeatures& f = driver.features();
  common::log::info(
      "cachetd {} on {}: tcp {}, udp {}, {} threads (io_uring {}, taskrun {}), {} MB, "
      "item max {} bytes, arena {}{}",
      dataplane::kVersion, settings.net.listen,
      driver.tcp_port_bound() ? std::to_string(driver.tcp_port_bound()) : "off",
      driver.udp_port_bound() ? std::to_string(driver.udp_port_bound()) : "off",
      settings.net.threads, f.multishot ? "multishot" : "single-shot", f.taskrun,
      settings.store.memory_mb, settings.store.item_size_max,
      settings.store.shm.empty() ? "private" : settings.store.shm,
      settings.takeover.empty()
          ? std::string()
          : fmt::format(", serving {:.1f} ms after start (takeover)",
                        (common::mono_ns() - start_ns) / 1e6));

  Successor successor(settings.net.admin_socket, {}, driver);
  common::log::debug("t={:.3f} ms: serving", common::mono_ns() / 1e6);
  driver.run(*server);
  g_drivers[0].store(nullptr);  // the driver goes before we return; a late signal must not reach it
  successor.complete([&] {
    server.reset();
    store->detach();  // the successor may attach now; unmapping comes after, off its path
  });
  common::log::info("cachetd: stopped");
  return 0;
}

#ifdef CACHET_HAVE_DPDK
// Numbers a second driver's workers after the first one's, so both share one Server.
class OffsetHandler final : public drivers::Handler {
 public:
  OffsetHandler(drivers::Handler& h, unsigned base) : h_(h), base_(base) {}
  void worker_start(unsigned w) override { h_.worker_start(base_ + w); }
  void* stream_open(unsigned w) override { return h_.stream_open(base_ + w); }
  drivers::StreamStep stream_data(void* st, std::string_view in, common::ByteBuf& out) override {
    return h_.stream_data(st, in, out);
  }
  void stream_close(void* st) override { h_.stream_close(st); }
  bool stream_idle(void* st) override { return h_.stream_idle(st); }
  void datagram(unsigned w, std::string_view in, drivers::DatagramSink& r) override {
    h_.datagram(base_ + w, in, r);
  }

 private:
  drivers::Handler& h_;
  unsigned base_;
};

// UDP memcache on the bypass path; with an exception port and -p, TCP too, through the kernel
// on the same address, served by the io_uring driver beside it (which also serves the admin
// socket). On an upgrade the predecessor stops polling and closes its port before this one
// opens it: that gap is measured and logged.
int run_dpdk(dataplane::Settings& settings) {
  std::string error;
  drivers::DriverOptions kernel = settings.net;
  kernel.listen = settings.dpdk.ip.substr(0, settings.dpdk.ip.find('/'));
  kernel.udp_port = 0;
  kernel.pin_threads = false;  // the lcores own their CPUs
  const bool want_tcp = settings.net.tcp_port != 0 && settings.dpdk.exception_port >= 0;
  if (settings.net.tcp_port != 0 && !want_tcp)
    common::log::warn("TCP on the DPDK address needs --dpdk-exception-port; TCP is off");
  if (!want_tcp) kernel.tcp_port = 0;
  drivers::UringDriver uring(kernel);
  const bool kernel_path = want_tcp || !kernel.admin_socket.empty();

  if (!settings.takeover.empty()) uring.expect_handoff();
  // The kernel path binds no address of its own on a takeover (it adopts the predecessor's
  // sockets), so it can be made ready before asking; otherwise it binds the DPDK address,
  // which exists only once the exception interface is up (after dpdk->open()).
  if (kernel_path && !settings.takeover.empty() && !uring.open(&error)) {
    std::fprintf(stderr, "cachetd: kernel path beside DPDK: %s\n", error.c_str());
    return 1;
  }
  const uint64_t asked_ns = common::mono_ns();
  if (int rc = take_over(settings, uring)) return rc;
  auto dpdk = std::make_unique<drivers::dpdk::DpdkDriver>(settings.dpdk, settings.net.udp_port);
  if (!dpdk->open(&error)) {
    std::fprintf(stderr, "cachetd: %s\n", error.c_str());
    return 1;
  }
  if (!settings.takeover.empty())
    common::log::warn("takeover: DPDK port serving again {:.1f} ms after the predecessor was "
                      "asked to stop polling (the port hand-over gap)",
                      (common::mono_ns() - asked_ns) / 1e6);
  const unsigned nd = dpdk->workers();
  settings.store.workers = nd + (kernel_path ? settings.net.threads : 0);
  std::unique_ptr<store::Store> store = store::Store::open(settings.store, &error);
  if (!store) {
    std::fprintf(stderr, "cachetd: %s\n", error.c_str());
    return 1;
  }
  auto server = std::make_unique<dataplane::Server>(*store, settings);
  server->set_driver(dpdk.get());
  // The kernel side binds the DPDK address, which the exception interface now carries.
  if (kernel_path && settings.takeover.empty() && !uring.open(&error)) {
    std::fprintf(stderr, "cachetd: kernel path beside DPDK: %s\n", error.c_str());
    return 1;
  }
  OffsetHandler kernel_handler(*server, nd);
  g_drivers[0].store(dpdk.get());
  if (kernel_path) g_drivers[1].store(&uring);
  install_signals();
  common::log::info("cachetd {} dpdk: {}; tcp {}; {} MB, arena {}", dataplane::kVersion,
                    dpdk->describe(),
                    want_tcp ? kernel.listen + ":" + std::to_string(settings.net.tcp_port) +
                                   " via " + dpdk->exception_ifname()
                             : std::string("off"),
                    settings.store.memory_mb,
                    settings.store.shm.empty() ? "private" : settings.store.shm);

  Successor successor(kernel.admin_socket, {dpdk.get()}, uring);
  std::thread kernel_thread;
  if (kernel_path) kernel_thread = std::thread([&] { uring.run(kernel_handler); });
  dpdk->run(*server);
  if (!successor.asked()) uring.stop();
  if (kernel_thread.joinable()) kernel_thread.join();
  g_drivers[0].store(nullptr);
  g_drivers[1].store(nullptr);
  successor.complete([&] {
    server.reset();
    dpdk.reset();  // stops and closes the port and EAL: the successor may open them now
    store->detach();
  });
  common::log::info("cachetd: stopped");
  return 0;
}
#else
int run_dpdk(dataplane::Settings&) {
  std::fprintf(stderr, "cachetd: --driver dpdk: this build has no DPDK driver (libdpdk-dev was "
                       "not found when it was configured)\n");
  return kExitUsage;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  dataplane::Settings settings;
  std::string error;
  bool help = false;
  if (!dataplane::parse_flags(argc, argv, settings, &error, &help)) {
    std::fprintf(stderr, "cachetd: %s\nRun 'cachetd -h' to see the options.\n", error.c_str());
    return kExitUsage;
  }
  if (help) {
    std::fputs(dataplane::usage().c_str(), stdout);
    return 0;
  }
  common::log::set_level(level_for(settings.verbosity));
  raise_fd_limit(settings);
  if (settings.driver == "dpdk") return run_dpdk(settings);
  return run_uring(settings);
}
