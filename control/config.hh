// cachet-control's configuration: one option table (section, key, kind, default, description)
// that the TOML reader, the embedded default config, `cachetctl config` and docs/CONTROL.md follow.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/settings.hh"

namespace cachet::control {

// Kinds of option values:
//   uint  integer in [lo, hi] (dataplane ones are checked by cachetd's own flag parser instead)
//   real  floating point number
//   text  string
//   list  array of strings
// X(section, key, kind, default, lo, hi, cachetd_flag, runtime, description)
// cachetd_flag: the cachetd flag a [dataplane] key becomes ("" = none); runtime: `cachetctl
// config set` may change it while running. Dataplane defaults come from cachetd's own Settings,
// so the two cannot drift. cachetd's run-time tunables (dataplane/tunables.hh) are [dataplane]
// options too, each with its cachetd flag, run time, from that one table.
#define CACHET_CONTROL_OPTIONS(X)                                                                  \
  X(control, socket, text, std::string(), 0, 0, "", false,                                        \
    "unix socket of the CLI API (mode 0600); empty = /run/cachet/control.sock as root, else "     \
    "$XDG_RUNTIME_DIR/cachet/control.sock or /tmp/cachet-<uid>/control.sock; --socket overrides") \
  X(control, log_level, text, std::string("info"), 0, 0, "", true,                                \
    "cachet-control's own logging: error, warn, info or debug")                                   \
  X(dataplane, binary, text, std::string(), 0, 0, "", false,                                      \
    "cachetd to run; empty = the cachetd built next to cachet-control "                           \
    "(<builddir>/dataplane/daemon/cachetd, or cachetd in the same directory when installed)")     \
  X(dataplane, arena, text, std::string(), 0, 0, "--shm", false,                                  \
    "shared-memory arena name or path (--shm); empty = cachet-<port>. The cache lives here and "  \
    "survives restarts and upgrades")                                                             \
  X(dataplane, port, uint, int64_t{dataplane::Settings{}.net.tcp_port}, 0, 0, "-p", false,        \
    "TCP port (0 = no TCP)")                                                                      \
  X(dataplane, udp_port, uint, int64_t{dataplane::Settings{}.net.udp_port}, 0, 0, "-U", false,    \
    "UDP port (0 = off)")                                                                         \
  X(dataplane, listen, text, dataplane::Settings{}.net.listen, 0, 0, "-l", false,                 \
    "listen addresses, comma separated")                                                          \
  X(dataplane, threads, uint, int64_t{dataplane::Settings{}.net.threads}, 0, 0, "-t", false,      \
    "worker threads (one io_uring or poll loop each)")                                            \
  X(dataplane, conn_limit, uint, int64_t{dataplane::Settings{}.net.max_conns}, 0, 0, "-c", false, \
    "maximum simultaneous connections")                                                           \
  X(dataplane, memory_mb, uint, static_cast<int64_t>(dataplane::Settings{}.store.memory_mb), 0, 0, \
    "-m", false, "item memory in megabytes (1 MB slab pages)")                                    \
  X(dataplane, item_size_max, uint, int64_t{dataplane::Settings{}.store.item_size_max}, 0, 0,     \
    "-I", false, "largest item in bytes (key + value + header)")                                  \
  X(dataplane, chunk_min, uint, int64_t{dataplane::Settings{}.store.chunk_min}, 0, 0, "-n", false, \
    "smallest slab chunk in bytes")                                                               \
  X(dataplane, growth_factor, real, dataplane::Settings{}.store.growth_factor, 0, 0, "-f", false, \
    "slab chunk size growth factor")                                                              \
  X(dataplane, driver, text, dataplane::Settings{}.driver, 0, 0, "--driver", false,               \
    "packet I/O driver: uring (kernel sockets) or dpdk")                                          \
  X(dataplane, maintenance_threads, uint, int64_t{dataplane::Settings{}.maintenance_threads}, 0, \
    0, "--maintenance-threads", false,                                                            \
    "threads of the maintenance engine (rebalancer, reapers, sweeps), off the poll-mode cores")  \
  X(dataplane, extra_args, list, std::vector<std::string>(), 0, 0, "", false,                     \
    "further cachetd flags, passed as they are (see cachetd -h)")                                 \
  X(supervisor, backoff_initial_ms, uint, int64_t{100}, 1, 3600000, "", true,                     \
    "delay before the first restart after a crash; doubles on each crash in a row")               \
  X(supervisor, backoff_max_ms, uint, int64_t{30000}, 1, 3600000, "", true,                       \
    "longest delay between restarts")                                                             \
  X(supervisor, stable_after_s, uint, int64_t{60}, 1, 86400, "", true,                            \
    "seconds a cachetd must run for the backoff to start again from backoff_initial_ms")          \
  X(supervisor, ready_timeout_ms, uint, int64_t{30000}, 100, 3600000, "", true,                   \
    "how long a starting cachetd may take to answer `version` before it is killed")               \
  X(supervisor, stop_timeout_ms, uint, int64_t{5000}, 100, 600000, "", true,                      \
    "after SIGTERM, how long cachetd may take to exit before SIGKILL")                            \
  X(upgrade, ready_timeout_ms, uint, int64_t{60000}, 100, 3600000, "", true,                      \
    "how long a new cachetd may take to serve during an upgrade before the upgrade fails")        \
  X(upgrade, drain_timeout_ms, uint, int64_t{30000}, 100, 3600000, "", true,                      \
    "how long the old cachetd may take to finish in-flight requests and exit before SIGTERM")     \
  X(metrics, port, uint, int64_t{9211}, 0, 65535, "", true,                                       \
    "Prometheus text metrics on http://127.0.0.1:<port>/metrics (0 = off)")                      \
  X(invalidate, socket, text, std::string(), 0, 0, "", true,                                      \
    "control socket of a cachet-invalidate daemon (its control.socket); when set, `cachetctl "   \
    "invalidate` and `cachetctl status` show its state. Empty = none")

enum class Kind { uint, real, text, list };

struct Config {
#define CACHET_X_uint int64_t
#define CACHET_X_real double
#define CACHET_X_text std::string
#define CACHET_X_list std::vector<std::string>
#define CACHET_X(sec, key, kind, def, lo, hi, flag, rt, desc) CACHET_X_##kind sec##_##key = def;
  CACHET_CONTROL_OPTIONS(CACHET_X)
#undef CACHET_X
  dataplane::TunableValues dataplane_tunables;  // [dataplane] <tunable name>
};

// One row of the option table, for code that walks every option.
struct OptionInfo {
  std::string_view section, key;
  Kind kind;
  int64_t lo, hi;         // uint without a cachetd flag only
  std::string_view flag;  // cachetd flag, "" = none
  bool runtime;
  std::string_view description;
  std::string name() const { return std::string(section) + "." + std::string(key); }
};
const std::vector<OptionInfo>& options();
const OptionInfo* find_option(std::string_view dotted_name);

// The value of an option as TOML source text ("11211", "\"uring\"", "[\"-a\"]").
std::string value_toml(const Config& c, const OptionInfo& o);
// The value for people: strings without quotes, lists space separated.
std::string value_text(const Config& c, const OptionInfo& o);

// Sets one option from text (as `cachetctl config set` sends it). Checks kind and range (and,
// for [dataplane] keys with a flag, cachetd's own parser); on failure returns false with
// *error naming the key and what is wrong. c is unchanged on failure.
bool set_option(Config& c, const OptionInfo& o, std::string_view text, std::string* error);

// Reads TOML text over the defaults in *out. Unknown sections or keys, wrong types and values
// out of range fail with *error naming the key (and the line). `origin` names the file.
bool parse_config(std::string_view toml_text, std::string_view origin, Config* out,
                  std::string* error);
bool load_config_file(const std::string& path, Config* out, std::string* error);

// The embedded default configuration: every option, its default and its description, as a
// TOML file that parse_config reads back to a default Config.
std::string default_config_text();

}  // namespace cachet::control
