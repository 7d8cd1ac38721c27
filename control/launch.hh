// How cachet-control starts cachetd: the command line from the config and the flags after
// `--`, the arena it names, the admin sockets, what a given cachetd binary supports, and the
// default paths (cachetd next to cachet-control, the control socket).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "control/admin_client.hh"
#include "control/config.hh"
#include "dataplane/settings.hh"

namespace cachet::control {

// Flags cachet-control passes itself; refused after `--`.
inline constexpr const char* kManagedFlags[] = {"--admin-socket", "--takeover"};

struct LaunchPlan {
  std::string binary;
  std::vector<std::string> args;  // cachetd's flags (config, then overrides), without argv[0]
  dataplane::Settings settings;   // what those flags mean, read by cachetd's own parser
  std::string arena;              // the --shm name or path in effect
};

// Builds the command line: [dataplane] keys in table order, then `overrides` (the flags after
// `--`, which win). Checks the whole line with cachetd's parser; errors name the config key or
// the flag. A -v among the overrides replaces dataplane.verbosity.
bool make_plan(const Config& c, const std::vector<std::string>& overrides, LaunchPlan* plan,
               std::string* error);

// Verbosity given by the overrides (count of -v), or -1 when they give none.
int override_verbosity(const std::vector<std::string>& overrides);

// What a cachetd binary supports, read from its `-h` output.
struct Capabilities {
  bool admin_socket = false;  // --admin-socket PATH
  bool takeover = false;      // --takeover PATH (upgrade in place)
};
bool probe_binary(const std::string& binary, Capabilities* caps, std::string* error);

// The full argv for one start: plan + the admin socket (when supported) + extra flags.
std::vector<std::string> command_line(const LaunchPlan& plan, const Capabilities& caps,
                                      const std::string& admin_socket,
                                      const std::vector<std::string>& extra);

// Where control reaches a cachetd started from plan: its admin socket, or TCP on the first
// listen address (127.0.0.1 for a wildcard) when the binary has no --admin-socket.
AdminEndpoint admin_endpoint(const LaunchPlan& plan, const Capabilities& caps,
                             const std::string& admin_socket);

// The cachetd next to this executable: <dir>/../dataplane/daemon/cachetd (build tree), else
// <dir>/cachetd (installed). "" when neither exists.
std::string default_binary();

// The control socket when neither --socket nor control.socket gives one.
std::string default_socket_path();

// A socket named file_name in the runtime directory: /run/cachet as root, else
// $XDG_RUNTIME_DIR/cachet or /tmp/cachet-<uid>.
std::string runtime_socket_path(std::string_view file_name);

// Files a named arena may be in (every hugetlbfs mount and /dev/shm), or the path itself.
std::vector<std::string> arena_files(const std::string& arena);

}  // namespace cachet::control
