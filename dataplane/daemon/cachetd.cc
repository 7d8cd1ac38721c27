// cachetd, the dataplane executable: memcached-style flags, the store, the Server and the
// drivers that serve it (io_uring on kernel sockets; with --driver dpdk, DPDK for UDP and the
// kernel path beside it for TCP and the admin socket) until SIGINT or SIGTERM, or until a
// successor takes over. This is the one place where driver implementations are assembled.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/clock.hh"
#include "common/log.hh"
#include "dataplane/daemon/flags.hh"
#include "dataplane/daemon/takeover.hh"
#include "dataplane/maintenance/engine.hh"
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

constexpr int kExitUsage = 64;        // EX_USAGE, as memcached for bad flags
constexpr int kExitIncompatible = 3;  // a successor refused the arena it was to keep

// The CPUs the process was allowed at start (before DPDK's EAL pins the main thread): the
// maintenance engine's threads run on those no driver busy-polls.
std::vector<unsigned> g_start_cpus;

// What the stop signal handler needs: the running drivers (at most two), nothing more.
std::atomic<drivers::Driver*> g_stoppable[2] = {nullptr, nullptr};

void on_stop_signal(int) {
  for (auto& d : g_stoppable)
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

int fail(const std::string& what) {
  std::fprintf(stderr, "cachetd: %s\n", what.c_str());
  return 1;
}

// The kernel path's options: all of -p/-U/-l with the uring driver; beside DPDK, TCP on the
// DPDK address through the exception interface (when there is one) and the admin socket.
drivers::DriverOptions kernel_options(const dataplane::Settings& s) {
  drivers::DriverOptions k = s.net;
  if (s.driver != "dpdk") return k;
  k.listen = s.dpdk.ip.substr(0, s.dpdk.ip.find('/'));
  k.udp_port = 0;
  k.pin_threads = false;  // the lcores own their CPUs
  if (s.dpdk.exception_port < 0) {
    if (k.tcp_port != 0)
      common::log::warn("TCP on the DPDK address needs --dpdk-exception-port; TCP is off");
    k.tcp_port = 0;
  }
  return k;
}

// One cachetd: its drivers, store and Server, started by run()'s list of steps.
class Daemon {
 public:
  explicit Daemon(dataplane::Settings& s)
      : s_(s),
        start_ns_(common::mono_ns()),
        dpdk_mode_(s.driver == "dpdk"),
        takeover_(!s.takeover.empty()),
        kernel_(kernel_options(s)),
        // With the uring driver the kernel path is the service; beside DPDK, only when it
        // has TCP or the admin socket to serve.
        kernel_on_(!dpdk_mode_ || kernel_.tcp_port != 0 || !kernel_.admin_socket.empty()),
        uring_(kernel_),
        successor_(uring_) {}

  // The start-up sequence, one list for a normal start and a takeover (upgrade in place).
  // Each step returns 0 to go on, or cachetd's exit status.
  int run() {
    using Step = int (Daemon::*)();
    static constexpr Step kSteps[] = {
        &Daemon::open_kernel_path_early,  // before asking: a successor stops the old one briefly
        &Daemon::take_over,               // with --takeover: sockets, connections, then the arena
        &Daemon::open_dpdk,               // EAL, ports (after the predecessor closed them)
        &Daemon::open_store,              // attach or create the arena; the Server on it
        &Daemon::open_kernel_path_late,   // beside DPDK: bind the address the port now carries
        &Daemon::serve,                   // until a signal, or until a successor asks
        &Daemon::hand_over,               // to that successor, if one asked
    };
    for (Step step : kSteps)
      if (int rc = (this->*step)()) return rc;
    common::log::info("cachetd: stopped");
    return 0;
  }

 private:
  // The kernel path opens before the takeover request when it adopts the predecessor's
  // sockets (it binds nothing then) or binds its own address (the uring driver); beside DPDK
  // on a fresh start it binds the DPDK address, which exists only once the exception
  // interface is up, so it waits for open_kernel_path_late.
  int open_kernel_path_early() {
    if (takeover_) uring_.expect_handoff();
    if (!kernel_on_ || (dpdk_mode_ && !takeover_)) return 0;
    return open_kernel_path();
  }
  int open_kernel_path_late() {
    if (!kernel_on_ || !dpdk_mode_ || takeover_) return 0;
    return open_kernel_path();
  }
  int open_kernel_path() {
    std::string error;
    if (!uring_.open(&error)) return fail(dpdk_mode_ ? "kernel path beside DPDK: " + error : error);
    return 0;
  }

  // Upgrade in place, successor's side: refuse an arena we cannot keep before disturbing the
  // running process, then take its sockets and connections and wait until it let the arena go.
  int take_over() {
    asked_ns_ = common::mono_ns();
    if (!takeover_) return 0;
    std::string error;
    if (!store::Store::probe(s_.store, &error)) {
      std::fprintf(stderr, "cachetd: refusing to take over: %s\n", error.c_str());
      return kExitIncompatible;
    }
    int pred = takeover::request(takeover::socket_path(s_.takeover), &error);
    if (pred < 0) return fail(error);
    drivers::Handoff h;
    common::log::debug("takeover t={:.3f} ms: requested", common::mono_ns() / 1e6);
    bool ok = takeover::receive_handoff(pred, &h, &error) &&
              takeover::wait_released(pred, 10'000, &error);
    common::log::debug("takeover t={:.3f} ms: received, arena free", common::mono_ns() / 1e6);
    close(pred);
    if (!ok) return fail("takeover failed: " + error);
    common::log::info("takeover: {} listeners, {} UDP sockets, {} connections",
                      h.tcp_listeners.size(), h.udp_sockets.size(), h.streams.size());
    uring_.adopt(std::move(h));
    return 0;
  }

  // The kernel path's workers come first (ids from 0), DPDK's lcores after them.
  unsigned kernel_workers() const { return kernel_on_ ? kernel_.threads : 0; }

  int open_dpdk() {
    if (!dpdk_mode_) return 0;
#ifdef CACHET_HAVE_DPDK
    dpdk_ = std::make_unique<drivers::dpdk::DpdkDriver>(s_.dpdk, s_.net.udp_port,
                                                        s_.net.udp_policy, kernel_workers());
    std::string error;
    if (!dpdk_->open(&error)) return fail(error);
    if (takeover_)
      common::log::warn("takeover: DPDK port serving again {:.1f} ms after the predecessor was "
                        "asked to stop polling (the port hand-over gap)",
                        (common::mono_ns() - asked_ns_) / 1e6);
    return 0;
#else
    std::fprintf(stderr, "cachetd: --driver dpdk: this build has no DPDK driver (libdpdk-dev was "
                         "not found when it was configured)\n");
    return kExitUsage;
#endif
  }

  int open_store() {
    s_.store.workers = kernel_workers() + (dpdk_ ? dpdk_->workers() : 0);
    std::string error;
    store_ = store::Store::open(s_.store, &error);
    if (!store_) return fail(error);
    server_ = std::make_unique<dataplane::Server>(*store_, s_);
    if (kernel_on_) server_->add_driver(&uring_, 0);
    if (dpdk_) server_->add_driver(dpdk_.get(), kernel_workers());
    // All background work on the store: rebalancer, transient reaper, sweeps, crash repair.
    maintenance_ = std::make_unique<dataplane::maintenance::Engine>(
        *store_, server_->tunables(),
        dataplane::maintenance::EngineOptions{s_.maintenance_threads, g_start_cpus,
                                              dpdk_ ? dpdk_->poll_cpus() : std::vector<unsigned>{}});
    server_->set_maintenance(maintenance_.get());
    maintenance_->start();
    return 0;
  }

  void log_serving() const {
    const std::string arena = s_.store.shm.empty() ? "private" : s_.store.shm;
#ifdef CACHET_HAVE_DPDK
    if (dpdk_) {
      common::log::info("cachetd {} dpdk: {}; tcp {}; {} MB, arena {}", dataplane::kVersion,
                        dpdk_->describe(),
                        kernel_.tcp_port ? fmt::format("{}:{} via {}", kernel_.listen,
                                                       kernel_.tcp_port, dpdk_->exception_ifname())
                                         : std::string("off"),
                        s_.store.memory_mb, arena);
      return;
    }
#endif
    const drivers::UringFeatures& f = uring_.features();
    auto port = [](uint16_t p) { return p ? std::to_string(p) : std::string("off"); };
    common::log::info(
        "cachetd {} on {}: tcp {}, udp {}, {} threads (io_uring {}, taskrun {}), {} MB, "
        "item max {} bytes, arena {}{}",
        dataplane::kVersion, s_.net.listen, port(uring_.tcp_port_bound()),
        port(uring_.udp_port_bound()), s_.net.threads, f.multishot ? "multishot" : "single-shot",
        f.taskrun, s_.store.memory_mb, s_.store.item_size_max, arena,
        takeover_ ? fmt::format(", serving {:.1f} ms after start (takeover)",
                                (common::mono_ns() - start_ns_) / 1e6)
                  : std::string());
  }

  // Runs the drivers until a stop signal, or until a successor asks (the Successor thread
  // then stops them). The kernel path beside DPDK runs on a thread of its own.
  int serve() {
    drivers::Driver* polling = dpdk_ ? static_cast<drivers::Driver*>(dpdk_.get()) : &uring_;
    g_stoppable[0].store(polling);
    if (dpdk_ && kernel_on_) g_stoppable[1].store(&uring_);
    install_signals();
    log_serving();
    if (dpdk_)
      successor_.start(kernel_.admin_socket, {dpdk_.get()});
    else
      successor_.start(kernel_.admin_socket, {});  // the kernel path hands off by itself
    common::log::debug("t={:.3f} ms: serving", common::mono_ns() / 1e6);
    if (!dpdk_) {
      uring_.run(*server_);
    } else {
      std::thread kernel_thread;
      if (kernel_on_) kernel_thread = std::thread([this] { uring_.run(*server_); });
      dpdk_->run(*server_);
      if (!successor_.asked()) uring_.stop();
      if (kernel_thread.joinable()) kernel_thread.join();
    }
    // The drivers go before we return: a late signal must not reach them.
    for (auto& d : g_stoppable) d.store(nullptr);
    return 0;
  }

  // When a successor asked: sockets and connections to it, then the arena (the port first:
  // closing it lets the successor open it).
  int hand_over() {
    successor_.complete([this] {
      maintenance_->stop();  // a page being moved goes back to its class before the handoff
      server_.reset();
      dpdk_.reset();
      store_->detach();  // the successor may attach now; unmapping comes after, off its path
    });
    return 0;
  }

  dataplane::Settings& s_;
  const uint64_t start_ns_;
  const bool dpdk_mode_;
  const bool takeover_;
  const drivers::DriverOptions kernel_;
  const bool kernel_on_;
  drivers::UringDriver uring_;
  takeover::Successor successor_;
#ifdef CACHET_HAVE_DPDK
  std::unique_ptr<drivers::dpdk::DpdkDriver> dpdk_;
#else
  std::unique_ptr<drivers::Driver> dpdk_;
#endif
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<dataplane::Server> server_;
  // Declared after what it uses (store, Server's tunables): it stops first.
  std::unique_ptr<dataplane::maintenance::Engine> maintenance_;
  uint64_t asked_ns_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  g_start_cpus = dataplane::maintenance::process_cpus();
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
  common::log::set_level(dataplane::log_level_for(settings.tunables.verbosity));
  raise_fd_limit(settings);
  return Daemon(settings).run();
}
