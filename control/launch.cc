// cachetd's command line from the config, checked with cachetd's own flag parser, and the
// paths cachet-control derives (binary, sockets, arena files).
#include "control/launch.hh"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "control/process.hh"
#include "dataplane/daemon/flags.hh"

namespace cachet::control {

namespace {

bool parse(const std::vector<std::string>& args, dataplane::Settings* s, std::string* error) {
  std::vector<std::string> full = {"cachetd"};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  bool help = false;
  if (!dataplane::parse_flags(static_cast<int>(full.size()), argv.data(), *s, error, &help))
    return false;
  if (help) {
    *error = "-h is not a cachetd setting";
    return false;
  }
  return true;
}

bool is_managed(const std::string& arg) {
  for (const char* m : kManagedFlags) {
    std::string_view f(m);
    if (arg == f || (arg.size() > f.size() && arg.rfind(f, 0) == 0 && arg[f.size()] == '='))
      return true;
  }
  return false;
}

bool exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

}  // namespace

int override_verbosity(const std::vector<std::string>& overrides) {
  dataplane::Settings s;
  s.store.memory_mb = uint64_t{4} << 20;  // so -I alone is not refused for the default -m
  std::string ignored;
  if (!parse(overrides, &s, &ignored)) return -1;
  return s.tunables.verbosity > 0 ? static_cast<int>(s.tunables.verbosity) : -1;
}

bool make_plan(const Config& c, const std::vector<std::string>& overrides, LaunchPlan* plan,
               std::string* error) {
  for (const auto* list : {&overrides, &c.dataplane_extra_args})
    for (const std::string& a : *list)
      if (is_managed(a)) {
        *error = fmt::format("{} is managed by cachet-control and cannot be given ({})", a,
                             list == &overrides ? "flags after --" : "dataplane.extra_args");
        return false;
      }
  const bool override_v = override_verbosity(overrides) > 0;
  static const Config kDefaults;
  std::vector<std::string> args;
  for (const OptionInfo& o : options()) {
    if (o.section != "dataplane" || o.flag.empty() || o.key == "arena") continue;
    std::string v = value_text(c, o);
    if (o.key == "verbosity") {
      if (!override_v)
        for (int64_t i = 0; i < c.dataplane_tunables.verbosity; ++i) args.push_back("-v");
      continue;
    }
    // Only what differs from cachetd's own defaults: a short line in `ps`.
    if (v.empty() || v == value_text(kDefaults, o)) continue;
    std::vector<std::string> one = {std::string(o.flag), v};
    dataplane::Settings s;
    s.store.memory_mb = uint64_t{4} << 20;
    std::string why;
    if (!parse(one, &s, &why)) {
      *error = fmt::format("dataplane.{}: {}", o.key, why);
      return false;
    }
    args.insert(args.end(), one.begin(), one.end());
  }
  dataplane::Settings s;
  if (!parse(args, &s, error)) {  // e.g. item_size_max more than half of memory_mb
    *error = fmt::format("[dataplane] settings: {}", *error);
    return false;
  }
  args.insert(args.end(), c.dataplane_extra_args.begin(), c.dataplane_extra_args.end());
  s = {};
  if (!parse(args, &s, error)) {
    *error = fmt::format("dataplane.extra_args: {}", *error);
    return false;
  }
  args.insert(args.end(), overrides.begin(), overrides.end());
  s = {};
  if (!parse(args, &s, error)) {
    *error = fmt::format("cachetd flags after --: {}", *error);
    return false;
  }
  // The arena: the config's, unless the flags name one; else one per TCP (or UDP) port.
  std::string arena = s.store.shm;
  if (arena.empty()) arena = c.dataplane_arena;
  if (arena.empty())
    arena = s.net.tcp_port || !s.net.udp_port ? fmt::format("cachet-{}", s.net.tcp_port)
                                              : fmt::format("cachet-u{}", s.net.udp_port);
  if (s.store.shm.empty()) args.insert(args.begin(), {"--shm", arena});
  s = {};
  if (!parse(args, &s, error)) {
    *error = fmt::format("dataplane.arena: {}", *error);
    return false;
  }
  plan->binary = c.dataplane_binary.empty() ? default_binary() : c.dataplane_binary;
  if (plan->binary.empty()) {
    *error = "dataplane.binary is not set and no cachetd was found next to cachet-control";
    return false;
  }
  plan->args = std::move(args);
  plan->settings = s;
  plan->arena = arena;
  return true;
}

bool probe_binary(const std::string& binary, Capabilities* caps, std::string* error) {
  std::string out;
  int status = -1;
  if (access(binary.c_str(), X_OK) != 0) {
    *error = fmt::format("{} is not an executable file", binary);
    return false;
  }
  if (!run_capture({binary, "-h"}, 10000, &out, &status, error)) return false;
  if (status != 0) {
    *error = fmt::format("{} -h exited with status {}: {}", binary, status,
                         out.substr(0, out.find('\n')));
    return false;
  }
  caps->admin_socket = out.find("--admin-socket") != std::string::npos;
  caps->takeover = out.find("--takeover") != std::string::npos;
  return true;
}

std::vector<std::string> command_line(const LaunchPlan& plan, const Capabilities& caps,
                                      const std::string& admin_socket,
                                      const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {plan.binary};
  argv.insert(argv.end(), plan.args.begin(), plan.args.end());
  if (caps.admin_socket && !admin_socket.empty()) {
    argv.push_back("--admin-socket");
    argv.push_back(admin_socket);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

AdminEndpoint admin_endpoint(const LaunchPlan& plan, const Capabilities& caps,
                             const std::string& admin_socket) {
  AdminEndpoint ep;
  if (caps.admin_socket && !admin_socket.empty()) {
    ep.unix_path = admin_socket;
    return ep;
  }
  std::string host = plan.settings.net.listen.substr(0, plan.settings.net.listen.find(','));
  if (host.empty() || host == "0.0.0.0" || host == "*") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.find(']') - 1);
  ep.host = host;
  ep.port = plan.settings.net.tcp_port;
  return ep;
}

std::string default_binary() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string exe(buf, static_cast<size_t>(n));
  std::string dir = exe.substr(0, exe.rfind('/'));
  for (std::string cand : {dir + "/../dataplane/daemon/cachetd", dir + "/cachetd"}) {
    if (access(cand.c_str(), X_OK) != 0) continue;
    char real[PATH_MAX];
    return realpath(cand.c_str(), real) ? std::string(real) : cand;
  }
  return "";
}

std::string runtime_socket_path(std::string_view file_name) {
  if (geteuid() == 0) return fmt::format("/run/cachet/{}", file_name);
  if (const char* x = getenv("XDG_RUNTIME_DIR"); x && *x && exists(x))
    return fmt::format("{}/cachet/{}", x, file_name);
  return fmt::format("/tmp/cachet-{}/{}", geteuid(), file_name);
}

std::string default_socket_path() { return runtime_socket_path("control.sock"); }

std::vector<std::string> arena_files(const std::string& arena) {
  if (arena.empty()) return {};
  if (arena.find('/') != std::string::npos) return {arena};
  std::vector<std::string> out;
  std::ifstream mounts("/proc/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream f(line);
    std::string dev, dir, type;
    if (f >> dev >> dir >> type && type == "hugetlbfs") out.push_back(dir + "/" + arena);
  }
  out.push_back("/dev/shm/" + arena);
  return out;
}

}  // namespace cachet::control
