// cachetd's flag parsing and help, both generated from CACHETD_OPTIONS and
// CACHET_STORE_OPTIONS. Limits follow memcached's where it has them, and the store's.
#include "dataplane/daemon/flags.hh"

#include <getopt.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <deque>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "drivers/dpdk/packet.hh"

namespace cachet::dataplane {

namespace {

// ---- value readers: false with *why (a phrase; the caller names the flag) ----

// A plain unsigned decimal, all of s, no sign, no overflow.
bool read_uint(std::string_view s, uint64_t* v) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && end == s.data() + s.size();
}

// A decimal with an optional k, m or g suffix (2^10, 2^20, 2^30), as memcached's -I.
bool read_scaled(std::string_view s, uint64_t* v) {
  uint64_t mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k': case 'K': mult = uint64_t{1} << 10; break;
      case 'm': case 'M': mult = uint64_t{1} << 20; break;
      case 'g': case 'G': mult = uint64_t{1} << 30; break;
      default: break;
    }
    if (mult != 1) s.remove_suffix(1);
  }
  if (!read_uint(s, v) || *v > UINT64_MAX / mult) return false;
  *v *= mult;
  return true;
}

bool read_range(const char* a, uint64_t lo, uint64_t hi, const char* what, uint64_t* v,
                std::string* why) {
  if (!read_uint(a, v) || *v < lo || *v > hi) {
    *why = fmt::format("'{}' is not {} ({}-{})", a, what, lo, hi);
    return false;
  }
  return true;
}

// ---- CACHETD_OPTIONS kinds ----

bool set_port(uint16_t& f, const char* a, std::string* why) {
  uint64_t v;
  if (!read_range(a, 0, 65535, "a port number", &v, why)) return false;
  f = static_cast<uint16_t>(v);
  return true;
}

bool set_threads(unsigned& f, const char* a, std::string* why) {
  uint64_t v;
  if (!read_range(a, 1, 1024, "a thread count", &v, why)) return false;
  f = static_cast<unsigned>(v);
  return true;
}

bool set_maint_threads(unsigned& f, const char* a, std::string* why) {
  uint64_t v;
  if (!read_range(a, 1, 64, "a thread count", &v, why)) return false;
  f = static_cast<unsigned>(v);
  return true;
}

bool set_conns(unsigned& f, const char* a, std::string* why) {
  uint64_t v;
  if (!read_range(a, 1, 16 << 20, "a connection count", &v, why)) return false;
  f = static_cast<unsigned>(v);
  return true;
}

bool set_text(std::string& f, const char* a, std::string*) {
  f = a;
  return true;
}

bool set_path(std::string& f, const char* a, std::string* why) {
  if (!*a || a[0] != '/') {
    *why = fmt::format("'{}' is not an absolute path", a);
    return false;
  }
  f = a;
  return true;
}

bool set_driver(std::string& f, const char* a, std::string* why) {
  std::string_view v = a;
  if (v != "uring" && v != "dpdk") {
    *why = fmt::format("'{}' is not a driver (uring or dpdk)", v);
    return false;
  }
  f = v;
  return true;
}

bool set_src_rate(uint32_t& f, const char* a, std::string* why) {
  uint64_t v;
  if (!read_range(a, 0, UINT32_MAX, "datagrams per second", &v, why)) return false;
  f = static_cast<uint32_t>(v);
  return true;
}

bool set_reply_max(uint32_t& f, const char* a, std::string* why) {
  uint64_t v;
  if (!read_scaled(a, &v) || v < 1400 || v > UINT32_MAX) {
    *why = fmt::format("'{}' is not a byte count from 1400 to 4g (k/m suffixes work)", a);
    return false;
  }
  f = static_cast<uint32_t>(v);
  return true;
}

bool set_on(bool& f, const char*, std::string*) {
  f = true;
  return true;
}

bool set_verbose(int64_t& f, const char*, std::string*) {
  ++f;
  return true;
}

// A run-time tunable's start-up value: a whole number in its range.
bool set_tunable(std::string_view name, int64_t& f, const char* a, std::string* why) {
  uint64_t v;
  if (!read_uint(a, &v) || v > static_cast<uint64_t>(INT64_MAX)) {
    *why = fmt::format("'{}' is not a whole number", a);
    return false;
  }
  if (!check_tunable(name, static_cast<int64_t>(v), why)) return false;
  f = static_cast<int64_t>(v);
  return true;
}

// --lease-window for lease_window. The names live in a deque: its elements never move, so the
// c_str() handed out earlier stays valid as more are added (a vector's short strings would move).
const char* tunable_flag(std::string_view name) {
  static std::deque<std::string> names;
  names.emplace_back(name);
  for (char& c : names.back())
    if (c == '_') c = '-';
  return names.back().c_str();
}

// ---- CACHET_STORE_OPTIONS: one reader per member (a new store option fails to compile here
// until it gets one) ----

bool set_store_shm(std::string& f, const char* a, std::string* why) {
  if (!*a) {
    *why = "needs an arena name or path";
    return false;
  }
  f = a;
  return true;
}

bool set_store_memory_mb(uint64_t& f, const char* a, std::string* why) {
  std::string_view s = a;  // megabytes; an m suffix changes nothing, g multiplies by 1024
  uint64_t mult = 1;
  if (!s.empty() && (s.back() == 'm' || s.back() == 'M')) {
    s.remove_suffix(1);
  } else if (!s.empty() && (s.back() == 'g' || s.back() == 'G')) {
    s.remove_suffix(1);
    mult = 1024;
  }
  constexpr uint64_t kMaxMb = uint64_t{4} << 20;  // 4 TB
  uint64_t v;
  if (!read_uint(s, &v) || v == 0 || v > kMaxMb / mult) {
    *why = fmt::format("'{}' is not a size in megabytes from 1 to 4194304 (like 64 or 2g)", a);
    return false;
  }
  f = v * mult;
  return true;
}

bool set_store_item_size_max(uint32_t& f, const char* a, std::string* why) {
  uint64_t v;  // bytes, k/m suffixes as memcached's -I
  if (!read_scaled(a, &v)) {
    *why = fmt::format("'{}' is not a size in bytes (like 1048576, 512k or 2m)", a);
    return false;
  }
  if (v < 1024) {
    *why = fmt::format("'{}' is less than 1024 bytes", a);
    return false;
  }
  if (v > (uint64_t{1} << 30)) {
    *why = fmt::format("'{}' is more than a gigabyte", a);
    return false;
  }
  f = static_cast<uint32_t>(v);
  return true;
}

bool set_store_chunk_min(uint32_t& f, const char* a, std::string* why) {
  uint64_t v;
  if (!read_range(a, 48, 1024, "a chunk size in bytes", &v, why)) return false;
  f = static_cast<uint32_t>(v);
  return true;
}

bool set_store_growth_factor(double& f, const char* a, std::string* why) {
  std::string_view s = a;
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !(v > 1.0 && v <= 2.0)) {
    *why = fmt::format("'{}' is not a factor above 1.0 and at most 2.0", a);
    return false;
  }
  f = v;
  return true;
}

bool set_store_discard_incompatible(bool& f, const char*, std::string*) {
  f = true;
  return true;
}

// ---- CACHET_DPDK_OPTIONS: one reader per member ----

bool set_dpdk_eal_args(std::string& f, const char* a, std::string*) {
  f = a;
  return true;
}

bool set_dpdk_ip(std::string& f, const char* a, std::string* why) {
  uint32_t ip;
  unsigned prefix;
  if (!drivers::dpdk::parse_ipv4_cidr(a, &ip, &prefix, why)) {
    why->erase(0, why->find(':') == std::string::npos ? 0 : why->find(':') + 2);
    return false;
  }
  f = a;
  return true;
}

bool set_dpdk_port(uint16_t& f, const char* a, std::string* why) {
  uint64_t v;
  if (!read_range(a, 0, 1023, "an ethdev port id", &v, why)) return false;
  f = static_cast<uint16_t>(v);
  return true;
}

bool set_dpdk_exception_port(int& f, const char* a, std::string* why) {
  if (std::string_view(a) == "-1") {
    f = -1;
    return true;
  }
  uint64_t v;
  if (!read_range(a, 0, 1023, "an ethdev port id (or -1 for none)", &v, why)) return false;
  f = static_cast<int>(v);
  return true;
}

bool set_dpdk_no_udp_checksum(bool& f, const char*, std::string*) {
  f = true;
  return true;
}

// memcached's long names and value names for the store's flags.
struct StoreNames {
  std::string_view member;
  const char* long_name;
  const char* value;
};
constexpr StoreNames kStoreNames[] = {
    {"shm", "shm", "<name|path>"},
    {"memory_mb", "memory-limit", "<mb>"},
    {"item_size_max", "max-item-size", "<bytes>"},
    {"chunk_min", "slab-min-size", "<bytes>"},
    {"growth_factor", "slab-growth-factor", "<factor>"},
    {"discard_incompatible", "shm-discard", ""},
};

// ---- the option table both the parser and usage() read ----

std::string show(const std::string& v) { return v.empty() ? "none" : v; }
std::string show(bool v) { return v ? "on" : "off"; }
std::string show(double v) { return fmt::format("{}", v); }
template <class T>
std::string show(T v) {
  return std::to_string(v);
}

struct Spec {
  char short_name;        // 0 = long only
  const char* long_name;  // nullptr = short only
  const char* value;      // "" = takes no value
  const char* desc;
  std::string (*current)(const Settings&);
  bool (*set)(Settings&, const char* arg, std::string* why);

  std::string name() const {
    return short_name ? fmt::format("-{}", short_name) : fmt::format("--{}", long_name);
  }
};

Spec store_spec(std::string_view member, std::string_view flag, bool takes_value,
                const char* desc, std::string (*current)(const Settings&),
                bool (*set)(Settings&, const char*, std::string*)) {
  Spec s{0, nullptr, takes_value ? "<value>" : "", desc, current, set};
  for (const StoreNames& n : kStoreNames) {
    if (n.member != member) continue;
    s.long_name = n.long_name;
    if (takes_value) s.value = n.value;
  }
  if (flag.size() == 2 && flag[0] == '-') s.short_name = flag[1];
  if (flag.substr(0, 2) == "--" && !s.long_name) s.long_name = flag.data() + 2;
  return s;
}

const std::vector<Spec>& specs() {
  static const std::vector<Spec> table = [] {
    std::vector<Spec> t;
#define CACHETD_SPEC(kind, member, sh, lo, val, desc)                                       \
  t.push_back(Spec{sh, lo, val, desc, [](const Settings& s) { return show(s.member); },     \
                   [](Settings& s, const char* a, std::string* why) {                       \
                     return set_##kind(s.member, a, why);                                   \
                   }});
    CACHETD_OPTIONS(CACHETD_SPEC)
#undef CACHETD_SPEC
#define STORE_SPEC(type, name, def, flag, desc)                                               \
  t.push_back(store_spec(                                                                    \
      #name, flag, !std::is_same_v<type, bool>, desc,                                        \
      [](const Settings& s) { return show(s.store.name); },                                 \
      [](Settings& s, const char* a, std::string* why) {                                     \
        return set_store_##name(s.store.name, a, why);                                       \
      }));
    CACHET_STORE_OPTIONS(STORE_SPEC)
#undef STORE_SPEC
#define DPDK_SPEC(type, name, def, flag, desc)                                                \
  t.push_back(Spec{0, flag + 2, std::is_same_v<type, bool> ? "" : "<value>", desc,           \
                   [](const Settings& s) { return show(s.dpdk.name); },                      \
                   [](Settings& s, const char* a, std::string* why) {                        \
                     return set_dpdk_##name(s.dpdk.name, a, why);                            \
                   }});
    CACHET_DPDK_OPTIONS(DPDK_SPEC)
#undef DPDK_SPEC
#define TUNABLE_SPEC(name, def, lo, hi, desc)                                                \
  if (std::string_view(#name) != "verbosity")                                               \
    t.push_back(Spec{0, tunable_flag(#name), "<n>", desc,                                   \
                     [](const Settings& s) { return show(s.tunables.name); },               \
                     [](Settings& s, const char* a, std::string* why) {                     \
                       return set_tunable(#name, s.tunables.name, a, why);                  \
                     }});
    CACHET_TUNABLES(TUNABLE_SPEC)
#undef TUNABLE_SPEC
    // Former names, kept working: the UDP policy was the DPDK driver's alone.
    for (auto [alias, name] : {std::pair{"dpdk-src-rate", "udp-src-rate"},
                               std::pair{"dpdk-reply-max", "udp-reply-max"}}) {
      for (const Spec& s : std::vector<Spec>(t)) {
        if (!s.long_name || std::string_view(s.long_name) != name) continue;
        Spec a = s;
        a.long_name = alias;
        a.desc = name == std::string_view("udp-src-rate") ? "the same as --udp-src-rate"
                                                          : "the same as --udp-reply-max";
        t.push_back(a);
      }
    }
    return t;
  }();
  return table;
}

constexpr int kLongOnly = 256;  // getopt val of long-only option i is kLongOnly + i

}  // namespace

bool parse_flags(int argc, char** argv, Settings& out, std::string* error, bool* help) {
  const std::vector<Spec>& table = specs();
  std::string shorts = ":h";  // leading ':' reports a missing value as ':'
  std::vector<option> longs;
  for (size_t i = 0; i < table.size(); ++i) {
    const Spec& s = table[i];
    const bool has_value = *s.value != '\0';
    if (s.short_name) {
      shorts += s.short_name;
      if (has_value) shorts += ':';
    }
    if (s.long_name)
      longs.push_back({s.long_name, has_value ? required_argument : no_argument, nullptr,
                       s.short_name ? s.short_name : kLongOnly + static_cast<int>(i)});
  }
  longs.push_back({"help", no_argument, nullptr, 'h'});
  longs.push_back({nullptr, 0, nullptr, 0});

  auto spec_for = [&](int val) -> const Spec* {
    if (val >= kLongOnly && val < kLongOnly + static_cast<int>(table.size()))
      return &table[static_cast<size_t>(val - kLongOnly)];
    for (const Spec& s : table)
      if (val != 0 && s.short_name == val) return &s;
    return nullptr;
  };

  *help = false;
  bool item_size_given = false;
  optind = 0;  // GNU: start afresh (parse_flags may run more than once per process)
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, shorts.c_str(), longs.data(), nullptr)) != -1) {
    if (c == 'h') {
      *help = true;
      return true;
    }
    if (c == ':') {
      const Spec* s = spec_for(optopt);
      *error = fmt::format("{} needs a value", s ? s->name() : std::string(argv[optind - 1]));
      return false;
    }
    if (c == '?') {
      const Spec* s = spec_for(optopt);
      if (s)
        *error = fmt::format("{} takes no value", s->name());
      else if (optopt)
        *error = fmt::format("unknown option '-{}'", static_cast<char>(optopt));
      else
        *error = fmt::format("unknown option '{}'", argv[optind - 1]);
      return false;
    }
    const Spec* s = spec_for(c);
    item_size_given |= c == 'I';
    std::string why;
    if (!s || !s->set(out, optarg ? optarg : "", &why)) {
      *error = fmt::format("{}: {}", s ? s->name() : "?", why);
      return false;
    }
  }
  if (optind < argc) {
    *error = fmt::format("unexpected argument '{}'", argv[optind]);
    return false;
  }
  // memcached's rule: an item may take at most half of the memory.
  if (item_size_given && out.store.item_size_max > (out.store.memory_mb << 20) / 2) {
    *error = fmt::format("-I: {} bytes is more than half of -m ({} MB)", out.store.item_size_max,
                         out.store.memory_mb);
    return false;
  }
  if (!out.takeover.empty() && out.store.shm.empty()) {
    *error = "--takeover keeps the cache only in a named arena: give --shm too";
    return false;
  }
  out.store.workers = out.net.threads;
  out.store.upkeep_workers = out.maintenance_threads;
  out.tunables.verbosity = std::min<int64_t>(out.tunables.verbosity, 3);  // -vvvv is -vvv
  return true;
}

std::string usage() {
  const Settings defaults;
  std::string u =
      "Usage: cachetd [options]\n"
      "A memcache-compatible cache server; memcached's flags mean the same here.\n\n";
  auto line = [&u](std::string head, std::string_view desc, std::string_view def) {
    if (head.size() < 34) head.resize(34, ' ');
    u += fmt::format("  {} {}", head, desc);
    if (!def.empty()) u += fmt::format(" (default: {})", def);
    u += '\n';
  };
  for (const Spec& s : specs()) {
    std::string head = s.short_name ? fmt::format("-{}", s.short_name) : std::string("   ");
    if (s.long_name) head += fmt::format("{}--{}", s.short_name ? ", " : " ", s.long_name);
    if (*s.value) {
      head += s.long_name ? '=' : ' ';
      head += s.value;
    }
    line(head, s.desc, s.current(defaults));
  }
  line("-h, --help", "print this help and exit", "");
  return u;
}

}  // namespace cachet::dataplane
