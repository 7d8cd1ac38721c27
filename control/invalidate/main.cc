// cachet-invalidate: the invalidation daemon (the paper's mcsqueal). It reads what PostgreSQL
// commits through a logical replication slot and sends the deletes it implies, batched, to
// every cache pool, at least once.
//   cachet-invalidate [--config FILE] [--socket PATH] [--check] [--print-default-config]
// Exit status: 0 stopped by a signal (or --check/--print-default-config done), 1 could not
// start (spool directory, socket in use), 2 bad command line or configuration.
#include <signal.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "common/log.hh"
#include "control/invalidate/config.hh"
#include "control/invalidate/daemon.hh"

namespace {

using namespace cachet::invalidate;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

}  // namespace

int main(int argc, char** argv) {
  cachet::common::log::set_program("cachet-invalidate");
  cachet::common::log::set_level(cachet::common::log::Level::info);
  std::string config_path, socket_path;
  bool print_default = false, check = false;
  CLI::App app{"Usage: cachet-invalidate [--config FILE] [--socket PATH] [--check]\n"
               "Reads committed changes from a PostgreSQL logical replication slot and sends "
               "the cache deletes they imply, batched, to every pool (docs/INVALIDATE.md).",
               "cachet-invalidate"};
  app.add_option("-c,--config", config_path,
                 "TOML configuration file (default: the embedded default configuration)");
  app.add_option("-s,--socket", socket_path, "control socket (overrides control.socket)");
  app.add_flag("--print-default-config", print_default,
               "print the embedded default configuration (every option, documented) and exit");
  app.add_flag("--check", check, "check the configuration, print a summary and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return e.get_exit_code() == 0 ? app.exit(e) : (app.exit(e), kExitUsage);
  }
  if (print_default) {
    std::fputs(default_config_text().c_str(), stdout);
    return 0;
  }
  Config config;
  std::string origin = "embedded default configuration", error;
  if (!config_path.empty()) {
    if (!load_config_file(config_path, &config, &error)) {
      std::fprintf(stderr, "cachet-invalidate: %s\n", error.c_str());
      return kExitUsage;
    }
    origin = config_path;
  }
  if (!socket_path.empty()) config.control_socket = socket_path;
  cachet::common::log::set_level(config.control_log_level);
  if (check) {
    size_t servers = 0;
    for (const PoolConfig& p : config.pools) servers += p.router.empty() ? p.servers.size() : 1;
    std::printf("%s: ok: %zu pools (%zu servers or routers), %zu rules, slot %s, publication %s\n",
                origin.c_str(), config.pools.size(), servers, config.rules.size(),
                config.source_slot.c_str(), config.source_publication.c_str());
    return 0;
  }
  // Every thread inherits SIGINT and SIGTERM blocked; the daemon reads them from a signalfd.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  Daemon daemon(std::move(config), origin);
  if (!daemon.start(&error)) {
    std::fprintf(stderr, "cachet-invalidate: %s\n", error.c_str());
    return kExitFailed;
  }
  return daemon.run();
}
