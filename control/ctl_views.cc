// Text layout for cachetctl: aligned columns, memcached stat names, no colours.
#include "control/ctl_views.hh"

#include <algorithm>
#include <charconv>
#include <map>

#include <fmt/format.h>

namespace cachet::control {

namespace {

using json = nlohmann::json;

double num(const StatList& s, std::string_view name) {
  const std::string* v = find_stat(s, name);
  double d = 0;
  if (v) std::from_chars(v->data(), v->data() + v->size(), d);
  return d;
}

std::string show(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump();
}

// Per-class fields from "<id>:<field>" (slabs) or "items:<id>:<field>" (items).
void collect(const StatList& stats, std::map<unsigned, std::map<std::string, double>>* out) {
  for (const auto& [name, value] : stats) {
    std::string_view n = name;
    if (n.rfind("items:", 0) == 0) n.remove_prefix(6);
    size_t colon = n.find(':');
    unsigned id = 0;
    if (colon == std::string_view::npos ||
        std::from_chars(n.data(), n.data() + colon, id).ptr != n.data() + colon)
      continue;
    double v = 0;
    std::from_chars(value.data(), value.data() + value.size(), v);
    (*out)[id][std::string(n.substr(colon + 1))] = v;
  }
}

// Memory coming back and pages moving, per second: expired items reclaimed (by reads, the
// CLOCK hand, the transient cache and sweeps), of which by the transient cache and by sweeps
// (flushed ones too), and pages moved between classes.
template <class Rate>
std::string memory_line(const TopSample& cur, Rate&& rate) {
  return fmt::format("reclaimed/s {:>8.0f}   (transient {:.0f}, sweeps {:.0f})   "
                     "pages moved/s {:.1f}   slabs_moved {:.0f}\n",
                     rate({"reclaimed"}), rate({"transient_reaped"}),
                     rate({"crawler_reclaimed"}), rate({"slabs_moved"}),
                     num(cur.stats, "slabs_moved"));
}

}  // namespace

StatList stats_from_json(const json& stats) {
  StatList out;
  if (!stats.is_array()) return out;
  for (const json& p : stats)
    if (p.is_array() && p.size() == 2 && p[0].is_string() && p[1].is_string())
      out.emplace_back(p[0].get<std::string>(), p[1].get<std::string>());
  return out;
}

std::string human_bytes(double b) {
  constexpr const char* kUnits[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f}", b) : fmt::format("{:.1f}{}", b, kUnits[u]);
}

std::string format_status(const json& s) {
  // Most telling first; any other field after them.
  static const std::vector<std::string> kOrder = {
      "state", "pid", "version", "uptime_s", "running_s", "binary", "args", "arena", "admin",
      "tcp_port", "udp_port", "listen", "threads", "memory_mb", "driver", "restarts",
      "last_exit", "restart_in_ms", "upgrading", "socket", "config", "metrics", "ok", "code",
      "error", "serve_ms", "total_ms", "old_pid"};
  std::string out;
  auto section = [&](const char* title, const json& obj) {
    if (!obj.is_object()) return;
    out += fmt::format("{}\n", title);
    for (const std::string& k : kOrder)
      if (obj.contains(k)) out += fmt::format("  {:<14} {}\n", k, show(obj[k]));
    for (auto it = obj.begin(); it != obj.end(); ++it)
      if (std::find(kOrder.begin(), kOrder.end(), it.key()) == kOrder.end())
        out += fmt::format("  {:<14} {}\n", it.key(), show(it.value()));
  };
  section("cachet-control", s.value("control", json::object()));
  section("cachetd", s.value("dataplane", json::object()));
  if (s.contains("last_upgrade")) section("last upgrade", s["last_upgrade"]);
  if (s.contains("invalidate")) section("cachet-invalidate", s["invalidate"]);
  return out;
}

std::string format_invalidate(const json& st) {
  const json src = st.value("source", json::object());
  const json pl = st.value("pipeline", json::object());
  const json au = st.value("auditor", json::object());
  std::string out = fmt::format("cachet-invalidate pid {}, up {} s, config {}, metrics {}\n",
                                show(st.value("pid", json())), show(st.value("uptime_s", json())),
                                show(st.value("config", json())), show(st.value("metrics", json())));
  out += fmt::format("source    {}{}  slot {}  publication {}\n", show(src.value("state", json())),
                     src.value("error", "").empty() ? "" : " (" + src.value("error", "") + ")",
                     show(src.value("slot", json())), show(src.value("publication", json())));
  out += fmt::format("          confirmed {}  received {}  wal end {}  lag {} B, {:.3f} s\n",
                     show(src.value("confirmed_lsn", json())), show(src.value("received_lsn", json())),
                     show(src.value("wal_end", json())), show(src.value("lag_bytes", json())),
                     src.value("lag_seconds", 0.0));
  for (const json& p : src.value("problems", json::array()))
    out += fmt::format("  problem: {}\n", show(p));
  for (const json& w : src.value("warnings", json::array()))
    out += fmt::format("  warning: {}\n", show(w));
  out += fmt::format("pipeline  commits {}  keys {}  in flight {}/{}  deletes per packet {:.1f}  "
                     "merged {}  rejected keys {}  repeated after restart {}\n",
                     show(pl.value("commits", json())), show(pl.value("keys", json())),
                     show(pl.value("inflight", json())), show(pl.value("max_inflight", json())),
                     pl.value("deletes_per_packet", 0.0), show(pl.value("merged", json())),
                     show(pl.value("keys_rejected", json())),
                     show(pl.value("redelivered_deletes", json())));
  for (const json& p : st.value("pools", json::array())) {
    out += fmt::format("pool {}{}\n", show(p.value("name", json())),
                       p.value("router", false) ? " (router)" : "");
    out += fmt::format("  {:<22} {:<10} {:>10} {:>10} {:>10} {:>9} {:>8} {:>10} {:>8}\n", "SERVER",
                       "STATE", "SENT", "DELETED", "NOT_FOUND", "PACKETS", "FAILURES",
                       "SPOOLED", "SPOOL");
    for (const json& s : p.value("servers", json::array())) {
      out += fmt::format("  {:<22} {:<10} {:>10} {:>10} {:>10} {:>9} {:>8} {:>10} {:>8}{}\n",
                         show(s.value("address", json())), show(s.value("state", json())),
                         show(s.value("deletes_sent", json())), show(s.value("deleted", json())),
                         show(s.value("not_found", json())), show(s.value("packets", json())),
                         show(s.value("failures", json())), show(s.value("spool_deletes", json())),
                         human_bytes(s.value("spool_bytes", 0.0)),
                         s.value("spool_full", false) ? "  FULL" : "");
      if (!s.value("last_error", "").empty())
        out += fmt::format("    last error: {}\n", s.value("last_error", ""));
    }
  }
  out += fmt::format("auditor   sample rate {}  samples {}  checked {}  misses {}  skipped {}\n",
                     show(au.value("sample_rate", json())), show(au.value("samples", json())),
                     show(au.value("checked", json())), show(au.value("misses", json())),
                     show(au.value("skipped", json())));
  return out;
}

std::string format_stats(const StatList& stats) {
  size_t w = 0;
  for (const auto& [n, v] : stats) w = std::max(w, n.size());
  std::string out;
  for (const auto& [n, v] : stats) out += fmt::format("{:<{}}  {}\n", n, w, v);
  return out;
}

std::string format_config(const json& tunables) {
  std::string out = fmt::format("{:<32} {:<10} {:<10} {}\n", "KEY", "VALUE", "DEFAULT", "DESCRIPTION");
  for (const json& t : tunables) {
    std::string key = t.value("key", "");
    if (!t.value("runtime", true)) key += " (start only)";
    out += fmt::format("{:<32} {:<10} {:<10} {}\n", key, show(t.value("value", json())),
                       show(t.value("default", json())), t.value("description", ""));
  }
  return out;
}

std::string format_slabs(const StatList& slabs, const StatList& items,
                         const StatList* earlier_slabs) {
  std::map<unsigned, std::map<std::string, double>> c, before;
  collect(slabs, &c);
  collect(items, &c);
  if (earlier_slabs) collect(*earlier_slabs, &before);
  // "12", or "12 +3" when the class gained 3 pages since the earlier sample.
  auto show_pages = [&](unsigned id, double now) {
    if (!earlier_slabs) return fmt::format("{:.0f}", now);
    const auto it = before.find(id);
    const double was = it == before.end() ? 0 : it->second["total_pages"];
    return now == was ? fmt::format("{:.0f}", now) : fmt::format("{:.0f} {:+.0f}", now, now - was);
  };
  std::string out = fmt::format("{:>5} {:>9} {:>6} {:>10} {:>10} {:>6} {:>10} {:>9} {:>8} {:>10}\n",
                                "CLASS", "CHUNK", "PAGES", "CHUNKS", "USED", "FILL", "ITEMS",
                                "MEM", "AGE_S", "EVICTED");
  double pages = 0, used = 0, total = 0, nitems = 0, evicted = 0;
  for (auto& [id, f] : c) {
    if (f["total_pages"] == 0 && f["number"] == 0) continue;
    const double fill = f["total_chunks"] > 0 ? 100.0 * f["used_chunks"] / f["total_chunks"] : 0;
    out += fmt::format("{:>5} {:>9} {:>6} {:>10.0f} {:>10.0f} {:>5.1f}% {:>10.0f} {:>9} {:>8.0f} "
                       "{:>10.0f}\n",
                       id, human_bytes(f["chunk_size"]), show_pages(id, f["total_pages"]), f["total_chunks"],
                       f["used_chunks"], fill, f["number"], human_bytes(f["mem_requested"]),
                       f["age"], f["evicted"]);
    pages += f["total_pages"];
    used += f["used_chunks"];
    total += f["total_chunks"];
    nitems += f["number"];
    evicted += f["evicted"];
  }
  out += fmt::format("{:>5} {:>9} {:>6.0f} {:>10.0f} {:>10.0f} {:>5.1f}% {:>10.0f} {:>9} {:>8} {:>10.0f}\n",
                     "all", "", pages, total, used, total > 0 ? 100.0 * used / total : 0.0, nitems,
                     "", "", evicted);
  if (const std::string* m = find_stat(slabs, "total_malloced"))
    out += fmt::format("total_malloced {} ({} bytes)\n", human_bytes(std::stod(*m)), *m);
  return out;
}

namespace {

// Per-second rate of the sum of some counters between two samples.
auto rates(const TopSample& prev, const TopSample& cur) {
  const double dt = std::max<int64_t>(1, cur.t_ms - prev.t_ms) / 1000.0;
  return [&prev, &cur, dt](std::initializer_list<std::string_view> names) {
    double d = 0;
    for (auto n : names) d += num(cur.stats, n) - num(prev.stats, n);
    return std::max(0.0, d) / dt;
  };
}

}  // namespace

std::string format_slabs_live(const TopSample& prev, const TopSample& cur,
                              const std::string& header) {
  std::string out = header + format_slabs(cur.slabs, cur.items, &prev.slabs);
  out += memory_line(cur, rates(prev, cur));
  out += fmt::format("moving now {:.0f}   relocated items {:.0f}   evicted for moves {:.0f}\n",
                     num(cur.stats, "slab_reassign_running"),
                     num(cur.stats, "slab_reassign_rescues"),
                     num(cur.stats, "slab_reassign_evictions_nomem"));
  return out;
}

std::string format_top(const TopSample& prev, const TopSample& cur, const std::string& header) {
  auto rate = rates(prev, cur);
  const double gets = rate({"cmd_get"}), hits = rate({"get_hits"});
  const double sets = rate({"cmd_set"});
  const double ops = rate({"cmd_get", "cmd_set", "cmd_touch", "cmd_flush", "delete_hits",
                           "delete_misses", "incr_hits", "incr_misses", "decr_hits", "decr_misses"});
  const double all_gets = num(cur.stats, "cmd_get");
  std::string out = header;
  out += fmt::format("ops/s {:>10.0f}   get/s {:>10.0f}   set/s {:>10.0f}\n", ops, gets, sets);
  out += fmt::format("hit ratio  {:>6}  (since start {})\n",
                     gets > 0 ? fmt::format("{:.1f}%", 100.0 * hits / gets) : std::string("-"),
                     all_gets > 0 ? fmt::format("{:.1f}%", 100.0 * num(cur.stats, "get_hits") / all_gets)
                                  : std::string("-"));
  out += fmt::format("evictions/s {:>8.0f}   evictions {:>12.0f}\n", rate({"evictions"}),
                     num(cur.stats, "evictions"));
  out += memory_line(cur, rate);
  const double bytes = num(cur.stats, "bytes"), limit = num(cur.stats, "limit_maxbytes");
  out += fmt::format("items {:>12.0f}   memory {} / {} ({:.1f}%)\n", num(cur.stats, "curr_items"),
                     human_bytes(bytes), human_bytes(limit), limit > 0 ? 100.0 * bytes / limit : 0.0);
  out += fmt::format("connections {:>6.0f}   in {}/s   out {}/s\n",
                     num(cur.stats, "curr_connections"), human_bytes(rate({"bytes_read"})),
                     human_bytes(rate({"bytes_written"})));
  // Per-worker load: "<driver>:<worker>:requests" counters, when the driver has them.
  std::vector<std::pair<std::string, double>> workers;
  double most = 0;
  for (const auto& [name, value] : cur.stats) {
    size_t c1 = name.find(':'), c2 = name.rfind(':');
    if (c1 == std::string::npos || c1 == c2 || name.substr(c2 + 1) != "requests") continue;
    double r = rate({name});
    workers.emplace_back(name.substr(c1 + 1, c2 - c1 - 1), r);
    most = std::max(most, r);
  }
  if (workers.empty()) {
    out += "per-worker load: not reported by this driver\n";
  } else {
    out += "per-worker requests/s:\n";
    for (const auto& [w, r] : workers) {
      const int bar = most > 0 ? static_cast<int>(30.0 * r / most + 0.5) : 0;
      out += fmt::format("  {:<10} {:>10.0f} {}\n", w, r, std::string(static_cast<size_t>(bar), '#'));
    }
  }
  return out;
}

}  // namespace cachet::control
