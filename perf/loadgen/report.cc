// Formatting of cachet-load results: a human summary and a JSON document (hand-written, the
// shapes are fixed and small).
#include "perf/loadgen/report.hh"

#include <fmt/core.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace cachet::perf {
namespace {

std::string json_str(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\')
      out += fmt::format("\\{}", ch);
    else if (c < 0x20 || c >= 0x7f)
      out += fmt::format("\\u{:04x}", c);
    else
      out.push_back(ch);
  }
  return out + "\"";
}

double us(uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

std::string lat_json(const Histogram& h) {
  return fmt::format(
      "{{\"count\": {}, \"mean\": {:.2f}, \"min\": {:.2f}, \"p50\": {:.2f}, \"p90\": {:.2f}, "
      "\"p99\": {:.2f}, \"p999\": {:.2f}, \"max\": {:.2f}}}",
      h.count(), h.mean() / 1000.0, us(h.min()), us(h.quantile(0.5)), us(h.quantile(0.9)),
      us(h.quantile(0.99)), us(h.quantile(0.999)), us(h.max()));
}

std::string lat_line(const char* name, const Histogram& h) {
  return fmt::format(
      "  latency {:<4} us: p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  p999 {:.1f}  max {:.1f}  "
      "mean {:.1f}  (n={})\n",
      name, us(h.quantile(0.5)), us(h.quantile(0.9)), us(h.quantile(0.99)), us(h.quantile(0.999)),
      us(h.max()), h.mean() / 1000.0, h.count());
}

const char* transport_name(const Options& o) {
  return o.dpdk() ? "dpdk-udp" : o.udp ? "udp" : "tcp";
}

std::string value_desc(const Options& o) {
  return o.value_dist == ValueDist::fixed ? fmt::format("fixed:{}", o.value_size) : "wildcard";
}

bool write_file(const std::string& path, const std::string& s, std::string* error) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f || std::fwrite(s.data(), 1, s.size(), f) != s.size()) {
    *error = fmt::format("cannot write --json {}: {}", path, std::strerror(errno));
    if (f) std::fclose(f);
    return false;
  }
  return std::fclose(f) == 0;
}

}  // namespace

void print_summary(const Options& o, const RunSummary& r) {
  const Stats& t = r.total;
  fmt::print(
      "cachet-load {}:{} {} io={} threads={} conns={} pipeline={} keys={} key-size={} "
      "value={} (mean {:.0f} B) get-ratio={} multiget={} cmd={}\n",
      o.dpdk() ? o.dpdk_peer : o.host, o.port, transport_name(o),
      o.dpdk() ? "dpdk" : to_string(o.io), o.threads, o.conns, o.pipeline,
      o.keys, o.key_dist == KeyDist::fixed ? fmt::format("{}", o.key_size) : "etc", value_desc(o),
      r.mean_value, o.get_ratio, o.multiget, o.gets_cmd ? "gets" : "get");
  if (!r.link_desc.empty()) fmt::print("  {}\n", r.link_desc);
  if (o.preload)
    fmt::print("  preload: {} sets in {:.2f} s{}\n", t.preload_sets, r.preload_s,
               t.preload_incomplete ? " (INCOMPLETE)" : "");
  if (r.ran) {
    fmt::print("  measured {:.2f} s after {:.1f} s warmup\n", r.elapsed_s, o.warmup);
    fmt::print("  key ops/s   {:>12.0f}   (RESULT metric; {} key ops)\n", r.key_ops_per_s(),
               t.key_ops);
    fmt::print("  requests/s  {:>12.0f}   ({} requests: {} gets of {} keys, {} sets)\n",
               r.requests_per_s(), t.requests, t.gets, o.multiget, t.sets);
    fmt::print("  hit ratio   {:>12.4f}   ({} hits, {} misses)\n", r.hit_ratio(), t.hits, t.misses);
    if (o.dpdk())
      fmt::print("  packets/s   {:>12.0f} rx {:.0f} tx in the window\n", r.rx_packets_per_s(),
                 r.tx_packets_per_s());
    fmt::print("{}", lat_line("all", t.lat));
    if (t.lat_get.count() && t.lat_set.count())
      fmt::print("{}{}", lat_line("get", t.lat_get), lat_line("set", t.lat_set));
  }
  if (r.ran)
    fmt::print(
        "  generator   {:>12.1f}%  CPU of its {} thread(s) in the window; {:.1f}% of polls found "
        "nothing; {:.1f}% of the window waiting for replies\n",
        100 * r.cpu_util(o.threads), o.threads, t.polls ? 100.0 * t.empty_polls / t.polls : 0.0,
        100 * r.idle_share(o.threads));
  fmt::print("  errors {}: protocol {}, server {}, value {}, connection {}, frame {}; udp timeouts "
             "{}{}\n",
             t.errors(), t.protocol_errors, t.server_errors, t.value_errors, t.conn_errors,
             t.frame_errors, t.timeouts, t.timeouts_are_errors ? " (errors over DPDK)" : "");
  for (const char* k : {"dpdk:lcore0:busy_polls", "dpdk:lcore0:idle_polls"})
    if (auto it = t.server_stats.find(k); it != t.server_stats.end())
      fmt::print("  server {} {}\n", k, it->second);
  if (!t.first_error.empty()) fmt::print("  first error: {}\n", t.first_error);
  fmt::print("  status: {}\n", r.ok() ? "ok" : "FAILED");
  std::fflush(stdout);
}

bool write_json(const Options& o, const RunSummary& r, std::string* error) {
  const Stats& t = r.total;
  std::string s = "{\n  \"tool\": \"cachet-load\",\n";
  s += fmt::format(
      "  \"config\": {{\"host\": {}, \"port\": {}, \"transport\": \"{}\", \"io\": \"{}\", "
      "\"threads\": {}, \"conns\": {}, \"pipeline\": {}, \"duration_s\": {}, \"warmup_s\": {}, "
      "\"max_requests\": {}, \"keys\": {}, \"key_size\": {}, \"key_dist\": \"{}\", "
      "\"value_size\": {}, \"value_dist\": \"{}\", \"mean_value_size\": {:.1f}, "
      "\"get_ratio\": {}, \"multiget\": {}, \"command\": \"{}\", \"preload\": {}, \"seed\": "
      "{}}},\n",
      json_str(o.dpdk() ? o.dpdk_peer : o.host), o.port, transport_name(o),
      o.dpdk() ? "dpdk" : to_string(o.io), o.threads, o.conns,
      o.pipeline, o.duration, o.warmup, o.max_requests, o.keys, o.key_size, to_string(o.key_dist),
      o.value_size, to_string(o.value_dist), r.mean_value, o.get_ratio, o.multiget,
      o.gets_cmd ? "gets" : "get", o.preload, o.seed);
  s += fmt::format("  \"preload\": {{\"sets\": {}, \"seconds\": {:.3f}, \"complete\": {}}},\n",
                   t.preload_sets, r.preload_s, !t.preload_incomplete);
  s += fmt::format(
      "  \"result\": {{\"metric\": \"key_ops_per_sec\", \"key_ops_per_sec\": {:.1f}, "
      "\"requests_per_sec\": {:.1f}, \"elapsed_s\": {:.4f}, \"requests\": {}, \"key_ops\": {}, "
      "\"gets\": {}, \"get_keys\": {}, \"sets\": {}, \"hits\": {}, \"misses\": {}, "
      "\"hit_ratio\": {:.6f}, \"errors\": {}, \"protocol_errors\": {}, \"server_errors\": {}, "
      "\"value_errors\": {}, \"conn_errors\": {}, \"frame_errors\": {}, \"timeouts\": {}, "
      "\"timeouts_are_errors\": {}, \"first_error\": {}, "
      "\"generator_cpu_util\": {:.4f}, \"empty_poll_ratio\": {:.4f}, \"rx_packets\": {}, "
      "\"tx_packets\": {}, \"rx_packets_per_sec\": {:.1f}, \"tx_packets_per_sec\": {:.1f}, "
      "\"generator_idle_share\": {:.4f}}},\n",
      r.key_ops_per_s(), r.requests_per_s(), r.elapsed_s, t.requests, t.key_ops, t.gets, t.get_keys,
      t.sets, t.hits, t.misses, r.hit_ratio(), t.errors(), t.protocol_errors, t.server_errors,
      t.value_errors, t.conn_errors, t.frame_errors, t.timeouts, t.timeouts_are_errors,
      json_str(t.first_error), r.cpu_util(o.threads),
      t.polls ? static_cast<double>(t.empty_polls) / t.polls : 0.0, t.rx_packets, t.tx_packets,
      r.rx_packets_per_s(), r.tx_packets_per_s(), r.idle_share(o.threads));
  s += fmt::format("  \"latency_us\": {{\"all\": {}, \"get\": {}, \"set\": {}}},\n",
                   lat_json(t.lat), lat_json(t.lat_get), lat_json(t.lat_set));
  if (!r.link_json.empty()) s += fmt::format("  \"dpdk\": {},\n", r.link_json);
  if (o.server_stats) {
    s += "  \"server_stats\": {";
    const char* sep = "";
    for (const auto& [k, v] : t.server_stats) {
      s += fmt::format("{}{}: {}", sep, json_str(k), v);
      sep = ", ";
    }
    s += "},\n";
    s += "  \"server_idle_rate\": {";
    sep = "";
    for (const auto& [k, v] : t.server_idle_rate) {
      if (v == 0) continue;
      s += fmt::format("{}{}: {:.1f}", sep, json_str(k), v);
      sep = ", ";
    }
    s += "},\n";
    // At the end, the server's own DPDK counters that are not zero (drops by reason etc.).
    s += "  \"server_stats_end\": {";
    sep = "";
    for (const auto& [k, v] : t.server_stats_end) {
      if (v == 0 || k.compare(0, 5, "dpdk:") != 0) continue;
      s += fmt::format("{}{}: {}", sep, json_str(k), v);
      sep = ", ";
    }
    s += "},\n";
  }
  s += fmt::format("  \"ok\": {}\n}}\n", r.ok());
  return write_file(o.json, s, error);
}

void print_ceiling(const Options& o, const CeilingSummary& c) {
  fmt::print("cachet-load ceiling: {}-byte UDP frames to {}:{}, {} in flight, {} lcore(s)\n",
             o.frame_size, o.dpdk_peer, o.port, o.window, o.threads);
  if (!c.link_desc.empty()) fmt::print("  {}\n", c.link_desc);
  fmt::print("  measured {:.2f} s after {:.1f} s warmup\n", c.elapsed_s, o.warmup);
  fmt::print("  round trips/s {:>10.0f}   ({} frames back of {} sent, {} lost, {} bad)\n",
             c.round_trips_per_s(), c.received, c.sent, c.lost, c.bad);
  fmt::print("  packets/s     {:>10.0f}   (both directions)\n", 2 * c.round_trips_per_s());
  fmt::print("{}", lat_line("rtt", c.lat));
  fmt::print("  generator   {:>12.1f}%  CPU; {:.1f}% of polls found nothing; {:.1f}% of the window "
             "waiting\n",
             c.elapsed_s > 0 ? 100.0 * c.cpu_ns / 1e9 / (c.elapsed_s * o.threads) : 0.0,
             c.polls ? 100.0 * c.empty_polls / c.polls : 0.0,
             c.elapsed_s > 0 ? 100.0 * c.idle_ns / 1e9 / (c.elapsed_s * o.threads) : 0.0);
  if (!c.first_error.empty()) fmt::print("  first error: {}\n", c.first_error);
  fmt::print("  status: {}\n", c.ok() ? "ok" : "FAILED");
  std::fflush(stdout);
}

bool write_ceiling_json(const Options& o, const CeilingSummary& c, std::string* error) {
  std::string s = "{\n  \"tool\": \"cachet-load\",\n  \"mode\": \"ceiling\",\n";
  s += fmt::format(
      "  \"config\": {{\"peer\": {}, \"port\": {}, \"transport\": \"dpdk-udp\", \"threads\": {}, "
      "\"frame_size\": {}, \"window\": {}, \"duration_s\": {}, \"warmup_s\": {}, "
      "\"max_requests\": {}}},\n",
      json_str(o.dpdk_peer), o.port, o.threads, o.frame_size, o.window, o.duration, o.warmup,
      o.max_requests);
  s += fmt::format(
      "  \"result\": {{\"metric\": \"round_trips_per_sec\", \"round_trips_per_sec\": {:.1f}, "
      "\"packets_per_sec\": {:.1f}, \"elapsed_s\": {:.4f}, \"sent\": {}, \"received\": {}, "
      "\"lost\": {}, \"bad\": {}, \"first_error\": {}, \"generator_cpu_util\": {:.4f}, "
      "\"empty_poll_ratio\": {:.4f}, \"generator_idle_share\": {:.4f}}},\n",
      c.round_trips_per_s(), 2 * c.round_trips_per_s(), c.elapsed_s, c.sent, c.received, c.lost,
      c.bad, json_str(c.first_error),
      c.elapsed_s > 0 ? c.cpu_ns / 1e9 / (c.elapsed_s * o.threads) : 0.0,
      c.polls ? static_cast<double>(c.empty_polls) / c.polls : 0.0,
      c.elapsed_s > 0 ? c.idle_ns / 1e9 / (c.elapsed_s * o.threads) : 0.0);
  s += fmt::format("  \"latency_us\": {{\"all\": {}}},\n", lat_json(c.lat));
  if (!c.link_json.empty()) s += fmt::format("  \"dpdk\": {},\n", c.link_json);
  s += fmt::format("  \"ok\": {}\n}}\n", c.ok());
  return write_file(o.json, s, error);
}

}  // namespace cachet::perf
