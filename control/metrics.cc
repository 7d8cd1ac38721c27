// Prometheus formatting: one table maps memcached stat names to memcached_exporter metric
// names; stats it does not name are exported as cachet_* so nothing cachetd counts is lost.
#include "control/metrics.hh"

#include <charconv>
#include <map>
#include <set>

#include <fmt/format.h>

namespace cachet::control {

namespace {

// X(stat, metric, type, help) for `stats` lines with a memcached_exporter name.
#define CACHET_GENERAL_METRICS(X)                                                              \
  X("uptime", "memcached_uptime_seconds", "counter", "Seconds since cachetd started.")         \
  X("time", "memcached_time_seconds", "gauge", "Current UNIX time according to cachetd.")      \
  X("rusage_user", "memcached_process_user_cpu_seconds_total", "counter", "User CPU time.")    \
  X("rusage_system", "memcached_process_system_cpu_seconds_total", "counter",                  \
    "System CPU time.")                                                                        \
  X("curr_connections", "memcached_current_connections", "gauge", "Open connections.")         \
  X("max_connections", "memcached_max_connections", "gauge", "Connection limit (-c).")         \
  X("total_connections", "memcached_connections_total", "counter", "Connections accepted.")    \
  X("rejected_connections", "memcached_connections_rejected_total", "counter",                 \
    "Connections refused at the -c limit.")                                                    \
  X("bytes_read", "memcached_read_bytes_total", "counter", "Bytes read from the network.")     \
  X("bytes_written", "memcached_written_bytes_total", "counter", "Bytes sent to the network.") \
  X("limit_maxbytes", "memcached_limit_bytes", "gauge", "Item memory limit in bytes.")         \
  X("bytes", "memcached_current_bytes", "gauge", "Bytes used by items.")                       \
  X("curr_items", "memcached_current_items", "gauge", "Items stored.")                         \
  X("total_items", "memcached_items_total", "counter", "Items stored since start.")            \
  X("evictions", "memcached_items_evicted_total", "counter", "Live items evicted.")            \
  X("reclaimed", "memcached_items_reclaimed_total", "counter",                                 \
    "Items stored in memory of an expired item.")                                              \
  X("store_too_large", "memcached_item_too_large_total", "counter",                            \
    "Stores refused: item larger than the limit.")                                             \
  X("store_no_memory", "memcached_item_no_memory_total", "counter",                            \
    "Stores refused: no memory.")                                                              \
  X("total_malloced", "memcached_malloced_bytes", "gauge", "Bytes of slab pages in classes.")

// X(stat in `stats slabs`, metric, type, help), labelled slab="<id>".
#define CACHET_SLAB_METRICS(X)                                                                  \
  X("chunk_size", "memcached_slab_chunk_size_bytes", "gauge", "Chunk size of the class.")      \
  X("chunks_per_page", "memcached_slab_chunks_per_page", "gauge", "Chunks in one page.")       \
  X("total_pages", "memcached_slab_current_pages", "gauge", "Pages the class owns.")           \
  X("total_chunks", "memcached_slab_current_chunks", "gauge", "Chunks the class owns.")        \
  X("used_chunks", "memcached_slab_chunks_used", "gauge", "Chunks holding an item.")           \
  X("free_chunks", "memcached_slab_chunks_free", "gauge", "Chunks free.")                      \
  X("free_chunks_end", "memcached_slab_chunks_free_end", "gauge", "Unused, always 0.")

// X(stat in `stats items`, metric, type, help), labelled slab="<id>".
#define CACHET_ITEM_METRICS(X)                                                                  \
  X("number", "memcached_slab_current_items", "gauge", "Items in the class.")                  \
  X("age", "memcached_slab_items_age_seconds", "gauge", "Age of the oldest item.")             \
  X("mem_requested", "memcached_slab_mem_requested_bytes", "gauge", "Bytes items ask for.")    \
  X("evicted", "memcached_slab_items_evicted_total", "counter", "Items evicted.")              \
  X("evicted_nonzero", "memcached_slab_items_evicted_nonzero_total", "counter",                \
    "Items with an exptime evicted.")                                                          \
  X("evicted_time", "memcached_slab_items_evicted_time_seconds", "gauge",                      \
    "Idle time of the last evicted item.")                                                     \
  X("evicted_unfetched", "memcached_slab_items_evicted_unfetched_total", "counter",            \
    "Items evicted never fetched.")                                                            \
  X("expired_unfetched", "memcached_slab_items_expired_unfetched_total", "counter",            \
    "Items expired never fetched.")                                                            \
  X("outofmemory", "memcached_slab_items_outofmemory_total", "counter",                        \
    "Stores that found no memory in the class.")                                               \
  X("reclaimed", "memcached_slab_items_reclaimed_total", "counter", "Expired items reused.")

struct Row {
  std::string_view stat, metric, type, help;
};
#define CACHET_ROW(s, m, t, h) Row{s, m, t, h},
constexpr Row kGeneral[] = {CACHET_GENERAL_METRICS(CACHET_ROW)};
constexpr Row kSlab[] = {CACHET_SLAB_METRICS(CACHET_ROW)};
constexpr Row kItem[] = {CACHET_ITEM_METRICS(CACHET_ROW)};
#undef CACHET_ROW

// Stats that are not numbers to export, or are exported differently.
const std::set<std::string_view> kNotExported = {
    "pid", "version", "pointer_size", "libevent", "threads"};
constexpr std::string_view kCommandOps[] = {"get", "delete", "incr", "decr", "cas", "touch"};

bool number(std::string_view s, double* v) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && end == s.data() + s.size();
}

// Per-class stats ("<id>:<field>" or "items:<id>:<field>") by class id.
std::map<unsigned, std::map<std::string, double>> per_class(const StatList& stats) {
  std::map<unsigned, std::map<std::string, double>> out;
  for (const auto& [name, value] : stats) {
    std::string_view n = name;
    if (n.rfind("items:", 0) == 0) n.remove_prefix(6);
    auto colon = n.find(':');
    unsigned id = 0;
    double v = 0;
    if (colon == std::string_view::npos ||
        std::from_chars(n.data(), n.data() + colon, id).ptr != n.data() + colon ||
        !number(value, &v))
      continue;
    out[id][std::string(n.substr(colon + 1))] = v;
  }
  return out;
}

}  // namespace

std::string sanitize_metric_name(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out += ok ? c : '_';
  }
  if (!out.empty() && out[0] >= '0' && out[0] <= '9') out.insert(out.begin(), '_');
  return out;
}

std::string format_metrics(const StatList& general, const StatList& settings,
                           const StatList& items, const StatList& slabs,
                           const ControlFigures& c) {
  MetricsWriter w;
  w.sample("memcached_up", "gauge", "Could cachetd be reached.", "", c.dataplane_up ? 1 : 0);
  std::map<std::string, double> g;
  for (const auto& [name, value] : general) {
    double v;
    if (number(value, &v)) g[name] = v;
    if (name == "version")
      w.sample("memcached_version", "gauge", "The version of cachetd.",
               fmt::format("version=\"{}\"", value), 1);
  }
  for (const Row& r : kGeneral)
    if (auto it = g.find(std::string(r.stat)); it != g.end())
      w.sample(r.metric, r.type, r.help, "", it->second);
  if (const std::string* v = find_stat(settings, "maxconns"); v && !g.count("max_connections")) {
    double x;
    if (number(*v, &x))
      w.sample("memcached_max_connections", "gauge", "Connection limit (-c).", "", x);
  }
  // Commands, as memcached_exporter: <op>_hits / <op>_misses; sets are cmd_set minus cas.
  const char* help = "Requests by command and status.";
  for (std::string_view op : kCommandOps) {
    for (std::string_view st : {"hits", "misses"}) {
      auto it = g.find(fmt::format("{}_{}", op, st));
      if (it != g.end())
        w.sample("memcached_commands_total", "counter", help,
                 fmt::format("command=\"{}\",status=\"{}\"", op, st == "hits" ? "hit" : "miss"),
                 it->second);
    }
  }
  if (g.count("cas_badval"))
    w.sample("memcached_commands_total", "counter", help, "command=\"cas\",status=\"badval\"",
             g["cas_badval"]);
  if (g.count("cmd_flush"))
    w.sample("memcached_commands_total", "counter", help, "command=\"flush\",status=\"hit\"",
             g["cmd_flush"]);
  if (g.count("cmd_set")) {
    double sets = g["cmd_set"] - g["cas_misses"] - g["cas_hits"] - g["cas_badval"];
    w.sample("memcached_commands_total", "counter", help, "command=\"set\",status=\"hit\"",
             sets < 0 ? 0 : sets);
  }
  // Everything else cachetd reports: cachet_<stat>; per-worker "drv:lcore3:requests" becomes
  // cachet_drv_requests{worker="lcore3"}.
  std::set<std::string_view> mapped;
  for (const Row& r : kGeneral) mapped.insert(r.stat);
  for (const auto& [name, value] : general) {
    double v;
    if (mapped.count(name) || kNotExported.count(name) || !number(value, &v)) continue;
    if (name.find("_hits") != std::string::npos || name.find("_misses") != std::string::npos ||
        name == "cas_badval" || name == "cmd_flush")
      continue;  // in memcached_commands_total
    auto c1 = name.find(':');
    auto c2 = c1 == std::string::npos ? c1 : name.find(':', c1 + 1);
    if (c2 != std::string::npos && name.compare(0, c1, "maintenance") == 0) {
      // "maintenance:reclaim:usec" -> cachet_maintenance_seconds_total{task="reclaim"}
      const std::string field = name.substr(c2 + 1);
      const std::string task = sanitize_metric_name(name.substr(c1 + 1, c2 - c1 - 1));
      const bool usec = field == "usec";
      w.sample("cachet_maintenance_" + (usec ? std::string("seconds") : sanitize_metric_name(field)) +
                   "_total",
               "counter",
               usec ? "Time the maintenance engine's task spent working."
                    : "Work of the maintenance engine's task (runs: steps that did work).",
               fmt::format("task=\"{}\"", task), usec ? v / 1e6 : v);
    } else if (c2 != std::string::npos) {
      w.sample("cachet_" + sanitize_metric_name(name.substr(0, c1) + "_" + name.substr(c2 + 1)),
               "untyped", "Per-worker driver counter.",
               fmt::format("worker=\"{}\"", sanitize_metric_name(name.substr(c1 + 1, c2 - c1 - 1))),
               v);
    } else {
      w.sample("cachet_" + sanitize_metric_name(name), "untyped", "cachetd stat " + name, "", v);
    }
  }
  for (const auto& [id, fields] : per_class(slabs))
    for (const Row& r : kSlab)
      if (auto it = fields.find(std::string(r.stat)); it != fields.end())
        w.sample(r.metric, r.type, r.help, fmt::format("slab=\"{}\"", id), it->second);
  for (const auto& [id, fields] : per_class(items))
    for (const Row& r : kItem)
      if (auto it = fields.find(std::string(r.stat)); it != fields.end())
        w.sample(r.metric, r.type, r.help, fmt::format("slab=\"{}\"", id), it->second);
  w.sample("cachet_control_uptime_seconds", "gauge", "Seconds since cachet-control started.", "",
           c.control_uptime_s);
  w.sample("cachet_control_restarts_total", "counter", "cachetd restarts after a crash.", "",
           static_cast<double>(c.restarts));
  const char* uh = "Upgrades in place by result.";
  w.sample("cachet_control_upgrades_total", "counter", uh, "result=\"ok\"",
           static_cast<double>(c.upgrades_ok));
  w.sample("cachet_control_upgrades_total", "counter", uh, "result=\"refused\"",
           static_cast<double>(c.upgrades_refused));
  w.sample("cachet_control_upgrades_total", "counter", uh, "result=\"failed\"",
           static_cast<double>(c.upgrades_failed));
  w.sample("cachet_control_last_upgrade_serve_seconds", "gauge",
           "Last upgrade: start of the new cachetd to its first answer.", "",
           c.last_upgrade_serve_s);
  w.sample("cachet_control_last_upgrade_total_seconds", "gauge",
           "Last upgrade: start to the old cachetd's exit.", "", c.last_upgrade_total_s);
  w.sample("cachet_control_restart_backoff_seconds", "gauge",
           "Delay before the pending restart (0 when none).", "", c.backoff_s);
  return w.take();
}

void MetricsWriter::sample(std::string_view name, std::string_view type, std::string_view help,
                           std::string_view labels, double v) {
  if (declared_.insert(std::string(name)).second)
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  out_ += labels.empty() ? fmt::format("{} {}\n", name, v)
                         : fmt::format("{}{{{}}} {}\n", name, labels, v);
}

std::string http_message(int code, std::string_view reason, std::string_view content_type,
                         std::string_view body) {
  return fmt::format(
      "HTTP/1.0 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
      code, reason, content_type, body.size(), body);
}

}  // namespace cachet::control
