// cachetd, the dataplane executable: memcached-style flags, the store, the Server, and the
// io_uring driver serving them until SIGINT or SIGTERM.
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "common/log.hh"
#include "dataplane/daemon/flags.hh"
#include "dataplane/server.hh"
#include "dataplane/version.hh"
#include "drivers/uring/uring_driver.hh"
#include "store/store.hh"

namespace {

using namespace cachet;

constexpr int kExitUsage = 64;  // EX_USAGE, as memcached for bad flags

std::atomic<drivers::Driver*> g_driver{nullptr};

void on_stop_signal(int) {
  if (drivers::Driver* d = g_driver.load()) d->stop();  // async-signal-safe by contract
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
  if (settings.driver == "dpdk") {
    std::fprintf(stderr, "cachetd: --driver dpdk: this build has no DPDK driver yet; "
                         "use --driver uring\n");
    return kExitUsage;
  }
  raise_fd_limit(settings);

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
  g_driver.store(&driver);
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
  g_driver.store(nullptr);  // the driver goes before main returns; a late signal must not reach it
  common::log::info("cachetd: stopped");
  return 0;
}
