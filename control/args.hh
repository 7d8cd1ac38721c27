// Command lines of cachet-control and cachetctl (CLI11), parsed into plain structs so that
// the unit tests check them without running either program.
#pragma once

#include <string>
#include <vector>

namespace cachet::control {

struct ControlArgs {
  std::string config_path;             // --config
  std::string socket_path;             // --socket
  bool print_default_config = false;   // --print-default-config
  bool check = false;                  // --check
  std::vector<std::string> overrides;  // everything after the first "--": cachetd's flags
};

struct CtlArgs {
  std::string socket;  // --socket (default: $CACHET_CONTROL_SOCKET, else default_socket_path())
  bool json = false;   // --json
  // status | stats | config-get | config-set | slabs | invalidate | top | upgrade | restart | stop
  std::string command;
  std::string group;          // stats [settings|items|slabs]
  std::string key, value;     // config get [KEY] / config set KEY VALUE
  int iterations = 0;         // top, slabs --watch: --iterations (0 = until q)
  double interval_s = 1.0;    // top, slabs --watch: --interval
  bool watch = false;         // slabs --watch
  std::string binary;         // upgrade --binary
  bool discard_cache = false; // upgrade --discard-cache
  bool discard = false;       // stop --discard
};

// Parse results: ok, help printed (exit 0), or an error (exit 2) with the message in *error
// and the help text in *help when asked for.
enum class ParseResult { ok, help, error };

ParseResult parse_control_args(int argc, const char* const* argv, ControlArgs* out,
                               std::string* help_or_error);
ParseResult parse_ctl_args(int argc, const char* const* argv, CtlArgs* out,
                           std::string* help_or_error);

}  // namespace cachet::control
