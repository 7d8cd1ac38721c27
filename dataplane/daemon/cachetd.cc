// cachetd, the dataplane executable: memcached-style flags, the store, the Server, and the
// io_uring driver serving them until SIGINT or SIGTERM.
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

#include "common/log.hh"
#include "dataplane/daemon/flags.hh"
#include "dataplane/server.hh"
#include "dataplane/version.hh"
#include "drivers/uring/uring_driver.hh"
#include "store/store.hh"
#ifdef CACHET_HAVE_DPDK
#include "drivers/dpdk/dpdk_driver.hh"
#endif

namespace {

using namespace cachet;

constexpr int kExitUsage = 64;  // EX_USAGE, as memcached for bad flags

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

int run_uring(dataplane::Settings& settings) {
  std::string error;
  settings.store.workers = settings.net.threads;
  std::unique_ptr<store::Store> store = store::Store::open(settings.store, &error);
  if (!store) {
    std::fprintf(stderr, "cachetd: %s\n", error.c_str());
    return 1;
  }
  dataplane::Server server(*store, settings);
  drivers::UringDriver driver(settings.net);
  if (!driver.open(&error)) {
    std::fprintf(stderr, "cachetd: %s\n", error.c_str());
    return 1;
  }
  server.set_driver(&driver);
  g_drivers[0].store(&driver);
  install_signals();

  const drivers::UringFeatures& f = driver.features();
  common::log::info(
      "cachetd {} on {}: tcp {}, udp {}, {} threads (io_uring {}, taskrun {}), {} MB, "
      "item max {} bytes, arena {}",
      dataplane::kVersion, settings.net.listen,
      driver.tcp_port_bound() ? std::to_string(driver.tcp_port_bound()) : "off",
      driver.udp_port_bound() ? std::to_string(driver.udp_port_bound()) : "off",
      settings.net.threads, f.multishot ? "multishot" : "single-shot", f.taskrun,
      settings.store.memory_mb, settings.store.item_size_max,
      settings.store.shm.empty() ? "private" : settings.store.shm);

  driver.run(server);
  g_drivers[0].store(nullptr);  // the driver goes before we return; a late signal must not reach it
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
  void datagram(unsigned w, std::string_view in, drivers::DatagramSink& r) override {
    h_.datagram(base_ + w, in, r);
  }

 private:
  drivers::Handler& h_;
  unsigned base_;
};

// UDP memcache on the bypass path; with an exception port and -p, TCP too, through the kernel
// on the same address, served by the io_uring driver beside it.
int run_dpdk(dataplane::Settings& settings) {
  std::string error;
  drivers::dpdk::DpdkDriver dpdk(settings.dpdk, settings.net.udp_port);
  if (!dpdk.open(&error)) {
    std::fprintf(stderr, "cachetd: %s\n", error.c_str());
    return 1;
  }
  const bool tcp = settings.net.tcp_port != 0 && !dpdk.exception_ifname().empty();
  if (settings.net.tcp_port != 0 && !tcp)
    common::log::warn("TCP on the DPDK address needs --dpdk-exception-port; TCP is off");
  const unsigned nd = dpdk.workers();
  settings.store.workers = nd + (tcp ? settings.net.threads : 0);
  std::unique_ptr<store::Store> store = store::Store::open(settings.store, &error);
  if (!store) {
    std::fprintf(stderr, "cachetd: %s\n", error.c_str());
    return 1;
  }
  dataplane::Server server(*store, settings);
  server.set_driver(&dpdk);

  drivers::DriverOptions kernel = settings.net;
  kernel.listen = settings.dpdk.ip.substr(0, settings.dpdk.ip.find('/'));
  kernel.udp_port = 0;
  kernel.pin_threads = false;  // the lcores own their CPUs
  drivers::UringDriver uring(kernel);
  if (tcp && !uring.open(&error)) {
    std::fprintf(stderr, "cachetd: TCP on the exception path: %s\n", error.c_str());
    return 1;
  }
  OffsetHandler tcp_handler(server, nd);
  g_drivers[0].store(&dpdk);
  if (tcp) g_drivers[1].store(&uring);
  install_signals();
  common::log::info("cachetd {} dpdk: {}; tcp {}; {} MB, arena {}", dataplane::kVersion,
                    dpdk.describe(),
                    tcp ? kernel.listen + ":" + std::to_string(settings.net.tcp_port) +
                              " via " + dpdk.exception_ifname()
                        : std::string("off"),
                    settings.store.memory_mb,
                    settings.store.shm.empty() ? "private" : settings.store.shm);

  std::thread kernel_path;
  if (tcp) kernel_path = std::thread([&] { uring.run(tcp_handler); });
  dpdk.run(server);
  uring.stop();
  if (kernel_path.joinable()) kernel_path.join();
  g_drivers[0].store(nullptr);
  g_drivers[1].store(nullptr);
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
