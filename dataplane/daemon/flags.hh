// cachetd's command line: memcached's core flags (so cachetd is a drop-in in scripts) plus
// Cachet's own, parsed with getopt_long like memcached's. Pure: no I/O, no exit.
#pragma once

#include <string>

#include "dataplane/settings.hh"

namespace cachet::dataplane {

// cachetd's own options; the store's are CACHET_STORE_OPTIONS (store/store.hh), the run-time
// tunables' CACHET_TUNABLES (dataplane/tunables.hh: --<name> <n>, start-up values). No default is
// written here: --help prints each member's value in a default-constructed Settings, so help
// cannot drift from the code.
// X(kind, member, short, long, value, description); `kind` names the parser that reads and
// checks the value (set_<kind> in flags.cc); short is 0 for long-only options.
#define CACHETD_OPTIONS(X)                                                                      \
  X(port, net.tcp_port, 'p', "port", "<num>", "TCP port to listen on; 0 turns TCP off")         \
  X(port, net.udp_port, 'U', "udp-port", "<num>", "UDP port to listen on; 0 turns UDP off")     \
  X(text, net.listen, 'l', "listen", "<addr>",                                                  \
    "interfaces to listen on, comma separated; host:port and [v6]:port also work")              \
  X(threads, net.threads, 't', "threads", "<num>", "worker threads, one io_uring each (1-1024)") \
  X(conns, net.max_conns, 'c', "conn-limit", "<num>",                                           \
    "max simultaneous connections; more get \"ERROR Too many open connections\"")               \
  X(driver, driver, 0, "driver", "<name>", "packet I/O: uring (kernel sockets) or dpdk")        \
  X(src_rate, net.udp_policy.src_rate, 0, "udp-src-rate", "<n>",                                \
    "UDP datagrams per second accepted from one source address, per worker; 0 = no limit")     \
  X(reply_max, net.udp_policy.reply_max, 0, "udp-reply-max", "<bytes>",                         \
    "most reply bytes (frame headers included) sent for one UDP request, on every driver: "    \
    "the amplification bound (k/m suffixes work)")                                              \
  X(on, net.pin_threads, 0, "pin-threads", "",                                                  \
    "pin io_uring worker i to the i-th CPU the process may use (default: the kernel places "   \
    "them, as memcached's threads; pin on a host whose cores are the server's alone)")          \
  X(path, net.admin_socket, 0, "admin-socket", "<path>",                                        \
    "unix socket (mode 0600) speaking the text protocol, for cachet-control; upgrades use it")  \
  X(path, takeover, 0, "takeover", "<path>",                                                    \
    "upgrade in place: take over the sockets, connections and arena of the cachetd whose "      \
    "admin socket is <path>")                                                                   \
  X(maint_threads, maintenance_threads, 0, "maintenance-threads", "<num>",                     \
    "threads of the maintenance engine (rebalancer, transient reaper, sweeps), on CPUs no "     \
    "poll loop uses (1-64)")                                                                    \
  X(verbose, tunables.verbosity, 'v', "verbose", "",                                            \
    "log more; repeat for more: -v info, -vv debug, -vvv trace")

// Reads argv into `out`; options not on the command line keep their value in `out` (pass a
// default-constructed Settings). Also sets out.store.workers to out.net.threads and
// out.store.upkeep_workers to out.maintenance_threads.
// Returns false with *error naming the flag (unknown flag, missing or bad value). On -h it sets
// *help and returns true at once.
bool parse_flags(int argc, char** argv, Settings& out, std::string* error, bool* help);

// The --help text: every option, its meaning and its default.
std::string usage();

}  // namespace cachet::dataplane
