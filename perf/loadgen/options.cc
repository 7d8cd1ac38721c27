// Command-line parsing for cachet-load: the option table, its --help text and range checks.
#include "perf/loadgen/options.hh"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <functional>
#include <string_view>
#include <type_traits>
#include <vector>

namespace cachet::perf {
namespace {

// Parses a number of type T within [lo, hi]; false when s is not entirely such a number.
template <typename T>
bool parse_num(std::string_view s, T lo, T hi, T* out) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

struct Spec {
  const char* name;  // without the leading "--"
  const char* arg;   // nullptr for a flag
  std::string def;   // default, as shown by --help
  const char* help;
  std::function<bool(std::string_view)> set;  // false: value out of range or malformed
};

std::vector<Spec> table(Options* o) {
  const Options d;
  auto u = [](auto* field, auto lo, auto hi) {
    return [=](std::string_view s) {
      return parse_num(s, static_cast<std::remove_pointer_t<decltype(field)>>(lo),
                       static_cast<std::remove_pointer_t<decltype(field)>>(hi), field);
    };
  };
  auto flag = [](bool* field) { return [=](std::string_view) { return *field = true; }; };
  return {
      {"host", "ADDR", d.host, "server IPv4 address (loopback only in this project)",
       [=](std::string_view s) { return !(o->host = std::string(s)).empty(); }},
      {"port", "N", fmt::format("{}", d.port), "server TCP (or UDP with --udp) port",
       u(&o->port, 1, 65535)},
      {"threads", "N", fmt::format("{}", d.threads), "event-loop threads (one per core)",
       u(&o->threads, 1, 256)},
      {"conns", "N", fmt::format("{}", d.conns), "connections in total, spread over threads",
       u(&o->conns, 1, 100000)},
      {"pipeline", "N", fmt::format("{}", d.pipeline), "requests in flight per connection",
       u(&o->pipeline, 1, 4096)},
      {"duration", "SEC", fmt::format("{}", d.duration), "measured seconds (0.1..3600)",
       u(&o->duration, 0.1, 3600.0)},
      {"max-requests", "N", "0", "stop after N measured requests (0: duration only)",
       u(&o->max_requests, uint64_t{0}, UINT64_MAX)},
      {"keys", "N", fmt::format("{}", d.keys), "key space size", u(&o->keys, 1, 1u << 30)},
      {"key-size", "N", fmt::format("{}", d.key_size), "key bytes with --key-dist fixed",
       u(&o->key_size, 1, kMaxKeySize)},
      {"key-dist", "fixed|etc", "fixed", "key sizes: fixed, or ETC's GEV(30.80, 8.20, 0.0787)",
       [=](std::string_view s) {
         if (s == "fixed")
           o->key_dist = KeyDist::fixed;
         else if (s == "etc")
           o->key_dist = KeyDist::etc;
         else
           return false;
         return true;
       }},
      {"value-size", "N", fmt::format("{}", d.value_size), "value bytes with --value-dist fixed",
       u(&o->value_size, 0, kMaxValueSize)},
      {"value-dist", "fixed|wildcard", "fixed",
       "value sizes: fixed, or wildcard = ETC's GPD(0, 214.476, 0.348238), 1 B..1 MB",
       [=](std::string_view s) {
         if (s == "fixed")
           o->value_dist = ValueDist::fixed;
         else if (s == "wildcard" || s == "etc")
           o->value_dist = ValueDist::wildcard;
         else
           return false;
         return true;
       }},
      {"get-ratio", "R", fmt::format("{}", d.get_ratio), "share of requests that are gets (0..1)",
       u(&o->get_ratio, 0.0, 1.0)},
      {"multiget", "K", fmt::format("{}", d.multiget), "keys per get request (`get k1 .. kK`)",
       u(&o->multiget, 1, kMaxMultiget)},
      {"gets", nullptr, "off", "send `gets` (replies carry a cas) instead of `get`",
       flag(&o->gets_cmd)},
      {"preload", nullptr, "off", "set every key once (pipelined) before measuring",
       flag(&o->preload)},
      {"preload-timeout", "SEC", fmt::format("{}", d.preload_timeout),
       "fail if the preload takes longer", u(&o->preload_timeout, 1.0, 3600.0)},
      {"warmup", "SEC", "0", "unmeasured load before the measured window (0..600)",
       u(&o->warmup, 0.0, 600.0)},
      {"json", "FILE", "", "write the result as JSON to FILE",
       [=](std::string_view s) { return !(o->json = std::string(s)).empty(); }},
      {"udp", nullptr, "off", "memcached UDP (8-byte frame header) instead of TCP", flag(&o->udp)},
      {"udp-timeout", "SEC", fmt::format("{}", d.udp_timeout),
       "an unanswered UDP request is counted lost after this", u(&o->udp_timeout, 0.001, 60.0)},
      {"io", "uring|epoll", "uring", "kernel socket engine",
       [=](std::string_view s) {
         if (s == "uring")
           o->io = IoKind::uring;
         else if (s == "epoll")
           o->io = IoKind::epoll;
         else
           return false;
         return true;
       }},
      {"busy-poll", nullptr, "off",
       "spin instead of sleeping in the kernel for events (slower on loopback here)",
       flag(&o->busy_poll)},
      {"seed", "N", "1", "random seed (key choice, get/set mix)",
       u(&o->seed, uint64_t{0}, UINT64_MAX)},
      {"quiet", nullptr, "off", "print no human summary", flag(&o->quiet)},
      {"marks", nullptr, "off", "print 'cachet-load: window start|end' lines (for perf/run)",
       flag(&o->marks)},
      {"server-stats", nullptr, "off",
       "UDP: send `stats` at the window's start and end, report the counters' deltas",
       flag(&o->server_stats)},
      {"mode", "memcache|ceiling", "memcache",
       "ceiling (DPDK only): echo raw UDP frames off a forwarder, report round trips/s",
       [=](std::string_view s) {
         if (s == "memcache")
           o->mode = Mode::memcache;
         else if (s == "ceiling")
           o->mode = Mode::ceiling;
         else
           return false;
         return true;
       }},
      {"dpdk-args", "EAL", "",
       "DPDK transport: EAL arguments, e.g. \"-l 1 --no-pci --no-huge -m 512 --file-prefix g "
       "--vdev=net_memif0,role=client,socket=/tmp/m.sock\" (one worker per lcore)",
       [=](std::string_view s) { return !(o->dpdk_args = std::string(s)).empty(); }},
      {"dpdk-ip", "A.B.C.D/NN", "", "DPDK: our IPv4 address on the port",
       [=](std::string_view s) { return !(o->dpdk_ip = std::string(s)).empty(); }},
      {"dpdk-peer", "A.B.C.D", "", "DPDK: the server's IPv4 address (its MAC comes from ARP)",
       [=](std::string_view s) { return !(o->dpdk_peer = std::string(s)).empty(); }},
      {"dpdk-port", "N", "0", "DPDK: ethdev port id", u(&o->dpdk_port, 0, 1023)},
      {"dpdk-arp-timeout", "SEC", fmt::format("{}", d.dpdk_arp_timeout),
       "DPDK: seconds for the link to come up and the peer to answer ARP",
       u(&o->dpdk_arp_timeout, 0.1, 120.0)},
      {"dpdk-linger", "SEC", "0",
       "DPDK: after the run keep the port open until the peer goes down, at most SEC (so the "
       "memif server can stop first; prints 'cachet-load: lingering ...')",
       u(&o->dpdk_linger, 0.0, 600.0)},
      {"dpdk-no-udp-checksum", nullptr, "off", "DPDK: send requests without a UDP checksum",
       flag(&o->dpdk_no_udp_checksum)},
      {"frame-size", "N", fmt::format("{}", d.frame_size),
       "ceiling: Ethernet frame bytes (66..1514)", u(&o->frame_size, 66, 1514)},
      {"window", "N", fmt::format("{}", d.window), "ceiling: frames in flight, all lcores",
       u(&o->window, 1, kMaxDpdkWindow)},
  };
}

void print_help(const std::vector<Spec>& specs) {
  fmt::print(
      "usage: cachet-load [options]\n"
      "Memcache text-protocol load generator: validates every reply, reports key ops/s,\n"
      "hit ratio, errors and latency percentiles. Exit 0 ok, 1 setup failure, 2 reply errors.\n\n");
  for (const Spec& s : specs) {
    std::string lhs = fmt::format("--{}{}{}", s.name, s.arg ? " " : "", s.arg ? s.arg : "");
    fmt::print("  {:<30} {} (default: {})\n", lhs, s.help, s.def.empty() ? "none" : s.def);
  }
}

}  // namespace

int parse_options(int argc, char** argv, Options* opt) {
  auto specs = table(opt);
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      print_help(specs);
      return 0;
    }
    if (a.substr(0, 2) != "--") {
      fmt::print(stderr, "cachet-load: unexpected argument '{}' (see --help)\n", a);
      return 1;
    }
    a.remove_prefix(2);
    std::string_view val;
    bool has_val = false;
    if (auto eq = a.find('='); eq != std::string_view::npos) {
      val = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_val = true;
    }
    const Spec* spec = nullptr;
    for (const Spec& s : specs)
      if (a == s.name) spec = &s;
    if (!spec) {
      fmt::print(stderr, "cachet-load: unknown option --{} (see --help)\n", a);
      return 1;
    }
    if (spec->arg && !has_val) {
      if (i + 1 >= argc) {
        fmt::print(stderr, "cachet-load: --{} needs a value ({})\n", a, spec->arg);
        return 1;
      }
      val = argv[++i];
    }
    if (!spec->set(val)) {
      fmt::print(stderr, "cachet-load: bad value '{}' for --{} (expected {})\n", val, a,
                 spec->arg ? spec->arg : "no value");
      return 1;
    }
  }
  if (opt->conns < opt->threads) {
    fmt::print(stderr, "cachet-load: --conns {} is fewer than --threads {}\n", opt->conns,
               opt->threads);
    return 1;
  }
  if (opt->multiget > 1 && opt->multiget > opt->keys) {
    fmt::print(stderr, "cachet-load: --multiget {} exceeds --keys {}\n", opt->multiget, opt->keys);
    return 1;
  }
  if (opt->udp && opt->value_size > kMaxUdpValueSize) {
    fmt::print(stderr, "cachet-load: --value-size {} does not fit a UDP request (max {})\n",
               opt->value_size, kMaxUdpValueSize);
    return 1;
  }
  if (opt->dpdk()) {
    if (opt->dpdk_ip.empty() || opt->dpdk_peer.empty()) {
      fmt::print(stderr, "cachet-load: --dpdk-args needs --dpdk-ip A.B.C.D/NN and --dpdk-peer\n");
      return 1;
    }
    opt->udp = true;  // memcache over DPDK is memcached's UDP framing
    if (opt->value_dist == ValueDist::fixed && opt->value_size > kMaxDpdkValueSize) {
      fmt::print(stderr,
                 "cachet-load: --value-size {} does not fit one Ethernet frame over DPDK (max {})\n",
                 opt->value_size, kMaxDpdkValueSize);
      return 1;
    }
    unsigned depth = opt->preload ? std::max(opt->pipeline, 32u) : opt->pipeline;
    if (opt->mode == Mode::memcache && uint64_t{opt->conns} * depth > kMaxDpdkWindow) {
      fmt::print(stderr,
                 "cachet-load: --conns {} x {} in flight exceeds the DPDK window of {} requests "
                 "(one memif ring; the preload keeps 32 per connection)\n",
                 opt->conns, depth, kMaxDpdkWindow);
      return 1;
    }
  } else if (opt->mode == Mode::ceiling) {
    fmt::print(stderr, "cachet-load: --mode ceiling needs the DPDK transport (--dpdk-args)\n");
    return 1;
  }
  if (opt->server_stats && !opt->udp) {
    fmt::print(stderr, "cachet-load: --server-stats needs --udp or --dpdk-args\n");
    return 1;
  }
  unsigned digits = fmt::formatted_size("{}", opt->keys - 1) + 1;
  if (opt->key_dist == KeyDist::fixed && opt->key_size < digits) {
    fmt::print(stderr, "cachet-load: --key-size {} too small for --keys {} (need >= {})\n",
               opt->key_size, opt->keys, digits);
    return 1;
  }
  return -1;
}

const char* to_string(ValueDist d) {
  return d == ValueDist::fixed ? "fixed" : "wildcard";
}
const char* to_string(KeyDist d) {
  return d == KeyDist::fixed ? "fixed" : "etc";
}
const char* to_string(IoKind k) {
  return k == IoKind::uring ? "uring" : "epoll";
}
const char* to_string(Mode m) {
  return m == Mode::memcache ? "memcache" : "ceiling";
}

}  // namespace cachet::perf
