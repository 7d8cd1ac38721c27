// cachet-control: the long-running supervisor of cachetd.
//   cachet-control [--config FILE] [--socket PATH] [-- <cachetd flags>]
// Its own few options are in args.cc; everything after `--` goes to cachetd, over the config.
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/log.hh"
#include "control/args.hh"
#include "control/config.hh"
#include "control/controller.hh"
#include "control/launch.hh"

namespace {

using namespace cachet::control;

constexpr int kExitUsage = 2;

}  // namespace

int main(int argc, char** argv) {
  cachet::common::log::set_program("cachet-control");
  cachet::common::log::set_level(cachet::common::log::Level::info);  // until the config says
  ControlArgs args;
  std::string text;
  switch (parse_control_args(argc, argv, &args, &text)) {
    case ParseResult::help: std::fputs(text.c_str(), stdout); return 0;
    case ParseResult::error:
      std::fprintf(stderr, "cachet-control: %s\nRun 'cachet-control --help' for the options.\n",
                   text.c_str());
      return kExitUsage;
    case ParseResult::ok: break;
  }
  if (args.print_default_config) {
    std::fputs(default_config_text().c_str(), stdout);
    return 0;
  }

  Config config;
  std::string origin = "embedded default configuration", error;
  if (!args.config_path.empty()) {
    if (!load_config_file(args.config_path, &config, &error)) {
      std::fprintf(stderr, "cachet-control: %s\n", error.c_str());
      return kExitUsage;
    }
    origin = args.config_path;
  }
  if (!args.socket_path.empty()) config.control_socket = args.socket_path;
  LaunchPlan plan;
  if (!make_plan(config, args.overrides, &plan, &error)) {
    std::fprintf(stderr, "cachet-control: %s\n", error.c_str());
    return kExitUsage;
  }
  if (args.check) {
    std::printf("%s", plan.binary.c_str());
    for (const std::string& a : plan.args) std::printf(" %s", a.c_str());
    std::printf("\n");
    return 0;
  }

  // Signals arrive through the controller's signalfd; children get a clean mask at exec.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGCHLD}) sigaddset(&set, s);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Controller controller(std::move(config), std::move(args.overrides), origin);
  return controller.run();
}
