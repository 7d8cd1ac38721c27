// cachetctl: the operator's CLI. It talks only to cachet-control, over its unix socket.
//   cachetctl [--socket PATH] [--json] status | stats [settings|items|slabs] | config get [KEY] |
//             config set KEY VALUE | slabs [--watch] | invalidate | top [--iterations N] |
//             upgrade [--binary PATH] [--discard-cache] | restart | stop [--discard]
// Exit statuses: 0 ok, 1 failed, 2 usage or bad key/value, 3 no control process, 4 upgrade
// refused (docs/CONTROL.md).
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "control/args.hh"
#include "control/ctl_client.hh"
#include "control/ctl_views.hh"

namespace cachet::control {
// Live views (ctl_top.cc): `top`, or with slabs the slab table of `slabs --watch`.
int run_live(const std::string& socket, int iterations, double interval_s, bool slabs);
}

namespace {

using namespace cachet::control;
using json = nlohmann::json;

constexpr int kShortTimeoutMs = 15000;
constexpr int kLongTimeoutMs = 300000;  // between progress lines of restart/upgrade/stop

int fail(const json& r) {
  std::fprintf(stderr, "cachetctl: %s\n", r.value("error", "unknown error").c_str());
  return exit_status_for(r);
}

// Prints the reply as JSON (--json) or through `view`; returns the exit status.
template <class View>
int show(const json& r, bool as_json, View view) {
  if (!r.value("ok", false)) return fail(r);
  if (as_json) {
    std::printf("%s\n", r.dump(2).c_str());
  } else {
    std::fputs(view(r).c_str(), stdout);
  }
  return kExitOk;
}

void print_progress(const json& p) {
  std::printf("[%7.3f s] %s\n", p.value("elapsed_ms", 0) / 1000.0,
              p.value("progress", "").c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CtlArgs a;
  std::string text;
  switch (parse_ctl_args(argc, argv, &a, &text)) {
    case ParseResult::help: std::fputs(text.c_str(), stdout); return kExitOk;
    case ParseResult::error:
      std::fprintf(stderr, "cachetctl: %s\nRun 'cachetctl --help' for the commands.\n",
                   text.c_str());
      return kExitUsage;
    case ParseResult::ok: break;
  }
  const std::string& socket = a.socket;
  const bool as_json = a.json;
  const std::string& cmd = a.command;

  if (cmd == "status") {
    return show(control_call(socket, {{"cmd", "status"}}, kShortTimeoutMs), as_json,
                [](const json& r) { return format_status(r["status"]); });
  }
  if (cmd == "stats") {
    return show(control_call(socket, {{"cmd", "stats"}, {"group", a.group}}, kShortTimeoutMs),
                as_json, [](const json& r) { return format_stats(stats_from_json(r["stats"])); });
  }
  if (cmd == "config-get") {
    json req = {{"cmd", "config_get"}};
    if (!a.key.empty()) req["key"] = a.key;
    return show(control_call(socket, req, kShortTimeoutMs), as_json, [](const json& r) {
      std::string s = format_config(r["tunables"]);
      if (r.contains("note")) s += fmt::format("({})\n", r["note"].get<std::string>());
      return s;
    });
  }
  if (cmd == "config-set") {
    return show(control_call(socket, {{"cmd", "config_set"}, {"key", a.key}, {"value", a.value}},
                             kShortTimeoutMs),
                as_json, [](const json& r) {
                  return fmt::format("{} = {} (was {})\n", r.value("key", ""),
                                     r.value("value", ""), r.value("previous", ""));
                });
  }
  if (cmd == "slabs" && a.watch) return run_live(socket, a.iterations, a.interval_s, true);
  if (cmd == "slabs") {
    json s = control_call(socket, {{"cmd", "stats"}, {"group", "slabs"}}, kShortTimeoutMs);
    if (!s.value("ok", false)) return fail(s);
    json i = control_call(socket, {{"cmd", "stats"}, {"group", "items"}}, kShortTimeoutMs);
    if (!i.value("ok", false)) return fail(i);
    if (as_json) {
      std::printf("%s\n", json({{"slabs", s["stats"]}, {"items", i["stats"]}}).dump(2).c_str());
      return kExitOk;
    }
    std::fputs(format_slabs(stats_from_json(s["stats"]), stats_from_json(i["stats"])).c_str(),
               stdout);
    return kExitOk;
  }
  if (cmd == "invalidate") {
    return show(control_call(socket, {{"cmd", "invalidate"}}, kShortTimeoutMs), as_json,
                [](const json& r) { return format_invalidate(r["invalidate"]); });
  }
  if (cmd == "top") return run_live(socket, a.iterations, a.interval_s, false);
  if (cmd == "upgrade") {
    json req = {{"cmd", "upgrade"}, {"discard_cache", a.discard_cache}};
    if (!a.binary.empty()) req["binary"] = a.binary;
    json r = control_call(socket, req, kLongTimeoutMs, as_json ? nullptr : print_progress);
    if (!r.value("ok", false)) {
      if (exit_status_for(r) == kExitRefused)
        r["error"] = fmt::format("upgrade {}; the running cachetd keeps serving",
                                 r.value("error", ""));
      return as_json ? (std::printf("%s\n", r.dump(2).c_str()), exit_status_for(r)) : fail(r);
    }
    return show(r, as_json, [](const json& r) {
      return fmt::format("upgraded: cachetd pid {} ({}) serving after {} ms; old pid {} exited, "
                         "{} ms in all\n",
                         r.value("pid", 0), r.value("version", ""), r.value("serve_ms", 0),
                         r.value("old_pid", 0), r.value("total_ms", 0));
    });
  }
  if (cmd == "restart") {
    return show(control_call(socket, {{"cmd", "restart"}}, kLongTimeoutMs), as_json,
                [](const json& r) {
                  return fmt::format("restarted: cachetd pid {} serving after {} ms\n",
                                     r.value("pid", 0), r.value("ready_ms", 0));
                });
  }
  if (cmd == "stop") {
    return show(control_call(socket, {{"cmd", "stop"}, {"discard", a.discard}}, kLongTimeoutMs),
                as_json, [](const json& r) {
                  return std::string(r.value("discarded", false)
                                         ? "stopped; arena deleted\n"
                                         : "stopped; the arena (cache) is kept\n");
                });
  }
  return kExitUsage;
}
