// Prometheus text formatting: memcached_exporter names and labels, cachet_* for the rest,
// one HELP/TYPE per metric, and the tiny HTTP front; plus the stats line parser it reads.
#include "control/metrics.hh"

#include <gtest/gtest.h>

#include <sstream>

namespace cachet::control {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l))
    if (l == line) return true;
  return false;
}

const StatList kGeneral = {
    {"pid", "42"},          {"uptime", "10"},       {"version", "1.6.18-cachet-0.1.0"},
    {"rusage_user", "1.500000"}, {"curr_connections", "3"}, {"cmd_get", "10"},
    {"cmd_set", "7"},       {"get_hits", "6"},      {"get_misses", "4"},
    {"cas_hits", "1"},      {"cas_misses", "1"},    {"cas_badval", "1"},
    {"curr_items", "5"},    {"bytes", "500"},       {"limit_maxbytes", "67108864"},
    {"evictions", "2"},     {"hash_power_level", "10"}, {"dpdk:lcore1:requests", "99"},
    {"threads", "4"},       {"slabs_moved", "12"},  {"maintenance:reclaim:items", "300"},
    {"maintenance:reclaim:usec", "2500000"}, {"maintenance:rebalance:pages", "12"}};
const StatList kSlabs = {{"1:chunk_size", "64"}, {"1:total_pages", "1"},
                         {"active_slabs", "1"},  {"total_malloced", "1048576"}};
const StatList kItems = {{"items:1:number", "5"}, {"items:1:evicted", "2"}};

TEST(Metrics, MemcachedExporterNames) {
  ControlFigures f;
  f.dataplane_up = true;
  f.restarts = 3;
  f.upgrades_ok = 1;
  const std::string m = format_metrics(kGeneral, {{"maxconns", "1024"}}, kItems, kSlabs, f);
  EXPECT_TRUE(has_line(m, "memcached_up 1")) << m;
  EXPECT_TRUE(has_line(m, "memcached_current_items 5"));
  EXPECT_TRUE(has_line(m, "memcached_current_bytes 500"));
  EXPECT_TRUE(has_line(m, "memcached_limit_bytes 67108864"));
  EXPECT_TRUE(has_line(m, "memcached_items_evicted_total 2"));
  EXPECT_TRUE(has_line(m, "memcached_process_user_cpu_seconds_total 1.5"));
  EXPECT_TRUE(has_line(m, "memcached_version{version=\"1.6.18-cachet-0.1.0\"} 1"));
  EXPECT_TRUE(has_line(m, "memcached_commands_total{command=\"get\",status=\"hit\"} 6"));
  EXPECT_TRUE(has_line(m, "memcached_commands_total{command=\"get\",status=\"miss\"} 4"));
  EXPECT_TRUE(has_line(m, "memcached_commands_total{command=\"cas\",status=\"badval\"} 1"));
  EXPECT_TRUE(has_line(m, "memcached_commands_total{command=\"set\",status=\"hit\"} 4"));
  EXPECT_TRUE(has_line(m, "memcached_max_connections 1024"));
  EXPECT_TRUE(has_line(m, "memcached_slab_chunk_size_bytes{slab=\"1\"} 64"));
  EXPECT_TRUE(has_line(m, "memcached_slab_current_items{slab=\"1\"} 5"));
  EXPECT_TRUE(has_line(m, "memcached_slab_items_evicted_total{slab=\"1\"} 2"));
  EXPECT_TRUE(has_line(m, "cachet_hash_power_level 10"));
  EXPECT_TRUE(has_line(m, "cachet_dpdk_requests{worker=\"lcore1\"} 99"));
  // The maintenance engine's figures, by task.
  EXPECT_TRUE(has_line(m, "cachet_slabs_moved 12"));
  EXPECT_TRUE(has_line(m, "cachet_maintenance_items_total{task=\"reclaim\"} 300"));
  EXPECT_TRUE(has_line(m, "cachet_maintenance_seconds_total{task=\"reclaim\"} 2.5"));
  EXPECT_TRUE(has_line(m, "cachet_maintenance_pages_total{task=\"rebalance\"} 12"));
  EXPECT_TRUE(has_line(m, "cachet_control_restarts_total 3"));
  EXPECT_TRUE(has_line(m, "cachet_control_upgrades_total{result=\"ok\"} 1"));
  EXPECT_EQ(m.find("cachet_pid"), std::string::npos) << "pid is not a metric";
  EXPECT_EQ(m.find("cachet_get_hits"), std::string::npos) << "in memcached_commands_total";
}

TEST(Metrics, OneHelpAndTypePerMetricAndValidNames) {
  const std::string m = format_metrics(kGeneral, {}, kItems, kSlabs, ControlFigures{});
  std::istringstream in(m);
  std::string l;
  std::set<std::string> typed;
  while (std::getline(in, l)) {
    if (l.rfind("# TYPE ", 0) == 0) {
      std::string name = l.substr(7, l.find(' ', 7) - 7);
      EXPECT_TRUE(typed.insert(name).second) << "TYPE twice: " << name;
      continue;
    }
    if (l.rfind("#", 0) == 0) continue;
    std::string name = l.substr(0, l.find_first_of(" {"));
    EXPECT_TRUE(typed.count(name)) << "sample before its TYPE: " << l;
    for (char c : name)
      EXPECT_TRUE(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':') << name;
  }
}

TEST(Metrics, DownWhenCachetdIsUnreachable) {
  const std::string m = format_metrics({}, {}, {}, {}, ControlFigures{});
  EXPECT_TRUE(has_line(m, "memcached_up 0"));
  EXPECT_EQ(m.find("memcached_current_items"), std::string::npos);
  EXPECT_TRUE(has_line(m, "cachet_control_restarts_total 0"));
}

TEST(Metrics, SanitizeName) {
  EXPECT_EQ(sanitize_metric_name("dpdk:lcore0:drop_bad-len"), "dpdk_lcore0_drop_bad_len");
  EXPECT_EQ(sanitize_metric_name("1abc"), "_1abc");
}

TEST(Metrics, Http) {
  auto body = [] { return std::string("x 1\n"); };
  std::string r = http_reply("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", body);
  EXPECT_EQ(r.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(r.find("Content-Length: 4\r\n"), std::string::npos);
  EXPECT_EQ(r.substr(r.size() - 4), "x 1\n");
  EXPECT_EQ(http_reply("GET /nope HTTP/1.1\r\n\r\n", body).rfind("HTTP/1.0 404", 0), 0u);
  EXPECT_EQ(http_reply("POST /metrics HTTP/1.1\r\n\r\n", body).rfind("HTTP/1.0 405", 0), 0u);
  EXPECT_EQ(http_reply("garbage\r\n\r\n", body).rfind("HTTP/1.0 400", 0), 0u);
}

TEST(AdminClient, ParseStatLines) {
  StatList s;
  EXPECT_TRUE(parse_stat_lines("STAT pid 1\r\nSTAT version 1.6 x\r\nSTAT empty\r\n", &s));
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[1].second, "1.6 x");
  EXPECT_EQ(s[2].second, "");
  EXPECT_EQ(*find_stat(s, "pid"), "1");
  EXPECT_EQ(find_stat(s, "nope"), nullptr);
  EXPECT_FALSE(parse_stat_lines("STAT a 1\r\nVALUE x\r\n", &s));
}

}  // namespace
}  // namespace cachet::control
