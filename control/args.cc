// CLI11 definitions of cachet-control's and cachetctl's command lines. CLI11 (Debian
// libcli11-dev, header only) gives subcommands, checked values and generated help.
#include "control/args.hh"

#include <cstdlib>

#include <CLI/CLI.hpp>

#include "control/launch.hh"

namespace cachet::control {

namespace {

ParseResult run_parse(CLI::App& app, std::vector<std::string> args, std::string* out) {
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    *out = app.help();
    return ParseResult::help;
  } catch (const CLI::CallForAllHelp&) {
    *out = app.help("", CLI::AppFormatMode::All);
    return ParseResult::help;
  } catch (const CLI::ParseError& e) {
    *out = e.what();
    return ParseResult::error;
  }
  return ParseResult::ok;
}

}  // namespace

ParseResult parse_control_args(int argc, const char* const* argv, ControlArgs* out,
                               std::string* help_or_error) {
  std::vector<std::string> mine = {argc > 0 ? argv[0] : "cachet-control"};
  bool after = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (!after && a == "--") {
      after = true;
      continue;
    }
    (after ? out->overrides : mine).push_back(a);
  }
  CLI::App app{
      "Usage: cachet-control [--config FILE] [--socket PATH] [-- <cachetd flags>]\n"
      "Starts and supervises cachetd, restarts it on a crash, upgrades it in place and serves "
      "cachetctl and Prometheus metrics. Flags after `--` are cachetd's (cachetd -h) and "
      "override [dataplane] in the config.",
      "cachet-control"};
  app.add_option("-c,--config", out->config_path,
                 "TOML configuration file (default: the embedded default configuration)");
  app.add_option("-s,--socket", out->socket_path,
                 "unix socket for cachetctl (default: control.socket, else " +
                     default_socket_path() + ")");
  app.add_flag("--print-default-config", out->print_default_config,
               "print the embedded default configuration (every option, documented) and exit");
  app.add_flag("--check", out->check,
               "check the configuration and print the cachetd command line, then exit");
  return run_parse(app, mine, help_or_error);
}

ParseResult parse_ctl_args(int argc, const char* const* argv, CtlArgs* out,
                           std::string* help_or_error) {
  CLI::App app{"cachetctl: the Cachet operator's CLI; it talks to cachet-control.\n"
               "Exit status: 0 ok, 1 failed, 2 usage/unknown key/bad value, 3 no control "
               "process, 4 upgrade refused.",
               "cachetctl"};
  const char* env = std::getenv("CACHET_CONTROL_SOCKET");
  out->socket = env && *env ? env : default_socket_path();
  app.add_option("-s,--socket", out->socket,
                 "cachet-control's socket (default: $CACHET_CONTROL_SOCKET, else " +
                     default_socket_path() + ")");
  app.add_flag("--json", out->json, "print the control process's JSON reply");
  app.require_subcommand(1);
  app.fallthrough();  // --socket and --json also after the command
  app.add_subcommand("status", "state of cachet-control and cachetd");
  auto* stats = app.add_subcommand("stats", "cachetd's stats (memcached's names)");
  stats->add_option("group", out->group, "settings, items or slabs")
      ->check(CLI::IsMember({"settings", "items", "slabs"}));
  auto* config = app.add_subcommand("config", "read or change run-time tunables");
  config->require_subcommand(1);
  auto* get = config->add_subcommand("get", "show a tunable, or all run-time tunables");
  get->add_option("key", out->key, "e.g. dataplane.verbosity");
  auto* set = config->add_subcommand("set", "change a run-time tunable");
  set->add_option("key", out->key, "e.g. dataplane.verbosity")->required();
  set->add_option("value", out->value, "the new value")->required();
  set->positionals_at_end();  // `config set supervisor.x -1` reaches the control's check
  auto* slabs = app.add_subcommand("slabs", "slab classes as a table (stats slabs + stats items)");
  slabs->add_flag("-w,--watch", out->watch,
                  "refresh every interval, showing pages moving between classes");
  app.add_subcommand("invalidate",
                     "the invalidation daemon's state (invalidate.socket): source, pools, spools");
  auto* top = app.add_subcommand("top", "live view: ops/s, hit ratio, evictions, reclaim and "
                                        "page moves, per-worker load");
  for (CLI::App* live : {slabs, top}) {
    live->add_option("-n,--iterations", out->iterations, "stop after N refreshes (0: until q)")
        ->check(CLI::NonNegativeNumber);
    live->add_option("-i,--interval", out->interval_s, "seconds between refreshes")
        ->check(CLI::Range(0.1, 3600.0));
  }
  auto* upgrade = app.add_subcommand("upgrade", "replace cachetd in place, keeping the cache");
  upgrade->add_option("--binary", out->binary, "the new cachetd (default: the configured one)");
  upgrade->add_flag("--discard-cache", out->discard_cache,
                    "let the new cachetd replace an arena whose layout it cannot read");
  app.add_subcommand("restart", "stop cachetd and start it again (the cache is kept)");
  auto* stop = app.add_subcommand("stop", "stop cachetd and cachet-control (the cache is kept)");
  stop->add_flag("--discard", out->discard, "also delete the arena (the cache)");

  std::vector<std::string> args(argv, argv + argc);
  ParseResult r = run_parse(app, args, help_or_error);
  if (r != ParseResult::ok) return r;
  for (CLI::App* sub : app.get_subcommands()) {
    out->command = sub->get_name();
    if (out->command == "config")
      out->command += get->parsed() ? "-get" : "-set";
  }
  return ParseResult::ok;
}

}  // namespace cachet::control
