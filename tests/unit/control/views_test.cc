// cachetctl's views (slab table, top frame, status), its exit statuses, and the dataplane
// tunables table.
#include "control/ctl_client.hh"
#include "control/ctl_views.hh"
#include "control/tunables.hh"

#include <gtest/gtest.h>

namespace cachet::control {
namespace {

using json = nlohmann::json;

TEST(Views, SlabTable) {
  const StatList slabs = {{"1:chunk_size", "64"},    {"1:total_pages", "2"},
                          {"1:total_chunks", "100"}, {"1:used_chunks", "25"},
                          {"5:chunk_size", "2048"},  {"5:total_pages", "1"},
                          {"5:total_chunks", "10"},  {"5:used_chunks", "10"},
                          {"active_slabs", "2"},     {"total_malloced", "3145728"}};
  const StatList items = {{"items:1:number", "25"}, {"items:1:age", "7"},
                          {"items:1:evicted", "3"}, {"items:5:number", "10"}};
  const std::string t = format_slabs(slabs, items);
  EXPECT_NE(t.find("CLASS"), std::string::npos) << t;
  EXPECT_NE(t.find("25.0%"), std::string::npos) << t;
  EXPECT_NE(t.find("100.0%"), std::string::npos) << t;
  EXPECT_NE(t.find("2.0K"), std::string::npos) << t;  // chunk size of class 5
  EXPECT_NE(t.find("all"), std::string::npos) << t;
  EXPECT_NE(t.find("3.0M"), std::string::npos) << t;
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 5) << t;  // header, 2 classes, all, malloced
}

TEST(Views, SlabTableShowsPagesMovingAndTheLiveFrameTheirRate) {
  TopSample a, b;
  a.t_ms = 0;
  b.t_ms = 2000;
  a.slabs = {{"1:chunk_size", "64"}, {"1:total_pages", "5"}, {"7:chunk_size", "512"},
             {"7:total_pages", "1"}};
  b.slabs = {{"1:chunk_size", "64"}, {"1:total_pages", "3"}, {"7:chunk_size", "512"},
             {"7:total_pages", "3"}, {"9:chunk_size", "900"}, {"9:total_pages", "1"}};
  b.items = {{"items:7:number", "40"}};
  a.stats = {{"slabs_moved", "10"}, {"reclaimed", "100"}, {"transient_reaped", "50"}};
  b.stats = {{"slabs_moved", "13"}, {"reclaimed", "300"}, {"transient_reaped", "150"},
             {"crawler_reclaimed", "40"}, {"slab_reassign_running", "1"},
             {"slab_reassign_rescues", "77"}};
  const std::string t = format_slabs_live(a, b, "H\n");
  EXPECT_EQ(t.rfind("H\n", 0), 0u);
  EXPECT_NE(t.find(" 3 -2 "), std::string::npos) << t;  // class 1 gave two pages
  EXPECT_NE(t.find(" 3 +2 "), std::string::npos) << t;  // class 7 got them
  EXPECT_NE(t.find(" 1 +1 "), std::string::npos) << t;  // class 9 is new
  EXPECT_NE(t.find("reclaimed/s      100"), std::string::npos) << t;
  EXPECT_NE(t.find("(transient 50, sweeps 20)"), std::string::npos) << t;
  EXPECT_NE(t.find("pages moved/s 1.5"), std::string::npos) << t;
  EXPECT_NE(t.find("moving now 1   relocated items 77"), std::string::npos) << t;
  // top carries the same reclaim and moves line.
  EXPECT_NE(format_top(a, b, "").find("pages moved/s 1.5   slabs_moved 13"), std::string::npos);
}

TEST(Views, HumanBytes) {
  EXPECT_EQ(human_bytes(0), "0");
  EXPECT_EQ(human_bytes(1023), "1023");
  EXPECT_EQ(human_bytes(1536), "1.5K");
  EXPECT_EQ(human_bytes(3 << 20), "3.0M");
}

TEST(Views, TopFrame) {
  TopSample a{0, {{"cmd_get", "100"}, {"get_hits", "50"}, {"cmd_set", "10"}, {"evictions", "0"},
                  {"dpdk:lcore0:requests", "0"}, {"dpdk:lcore1:requests", "0"}}};
  TopSample b{2000, {{"cmd_get", "300"}, {"get_hits", "200"}, {"cmd_set", "30"},
                     {"evictions", "4"}, {"curr_items", "9"}, {"limit_maxbytes", "1048576"},
                     {"bytes", "524288"}, {"dpdk:lcore0:requests", "100"},
                     {"dpdk:lcore1:requests", "50"}}};
  const std::string f = format_top(a, b, "HEADER\n");
  EXPECT_EQ(f.rfind("HEADER\n", 0), 0u);
  EXPECT_NE(f.find("ops/s        110"), std::string::npos) << f;  // (200 + 20) / 2 s
  EXPECT_NE(f.find("get/s        100"), std::string::npos) << f;
  EXPECT_NE(f.find("75.0%"), std::string::npos) << f;            // 150 hits of 200 gets
  EXPECT_NE(f.find("since start 66.7%"), std::string::npos) << f;
  EXPECT_NE(f.find("evictions/s        2"), std::string::npos) << f;
  EXPECT_NE(f.find("(50.0%)"), std::string::npos) << f;
  EXPECT_NE(f.find("lcore0"), std::string::npos) << f;
  EXPECT_NE(f.find("lcore1"), std::string::npos) << f;
  const std::string g = format_top(a, a, "");
  EXPECT_NE(g.find("hit ratio       -"), std::string::npos) << g;
  EXPECT_NE(format_top({}, {}, "").find("not reported by this driver"), std::string::npos);
}

TEST(Views, StatusAndConfig) {
  json s = {{"control", {{"pid", 1}, {"socket", "/s"}}},
            {"dataplane", {{"pid", 2}, {"state", "running"}, {"zzz", "last"}}}};
  const std::string t = format_status(s);
  EXPECT_LT(t.find("state"), t.find("pid          ", t.find("cachetd"))) << t;
  EXPECT_LT(t.find("pid            2"), t.find("zzz")) << t;
  json tun = json::array({{{"key", "dataplane.verbosity"}, {"value", "1"}, {"default", "0"},
                           {"description", "d"}, {"runtime", true}},
                          {{"key", "dataplane.port"}, {"value", "1"}, {"default", "11211"},
                           {"description", "p"}, {"runtime", false}}});
  const std::string c = format_config(tun);
  EXPECT_NE(c.find("dataplane.verbosity"), std::string::npos);
  EXPECT_NE(c.find("dataplane.port (start only)"), std::string::npos) << c;
  EXPECT_EQ(format_stats({{"a", "1"}, {"long_name", "2"}}), "a          1\nlong_name  2\n");
  EXPECT_EQ(stats_from_json(json::array({{"a", "1"}, {"b", 2}})).size(), 1u);
}

TEST(Views, Invalidate) {
  const json st = json::parse(R"({"pid": 42, "uptime_s": 9, "config": "/etc/i.toml",
    "metrics": "off",
    "source": {"state": "waiting", "error": "cannot connect", "slot": "s1", "publication": "p1",
               "confirmed_lsn": "0/16", "received_lsn": "0/20", "wal_end": "0/30",
               "lag_bytes": 26, "lag_seconds": 1.5, "problems": ["rule x: no table"],
               "warnings": []},
    "pipeline": {"commits": 5, "keys": 9, "inflight": 1, "max_inflight": 4096,
                 "deletes_per_packet": 4.5, "merged": 2, "keys_rejected": 1,
                 "redelivered_deletes": 3},
    "pools": [{"name": "west", "router": false, "servers": [
      {"address": "10.0.0.1:11211", "state": "down", "last_error": "connect: refused",
       "deletes_sent": 7, "deleted": 6, "not_found": 1, "packets": 2, "failures": 1,
       "spool_deletes": 12, "spool_bytes": 2048, "spool_full": true}]}],
    "auditor": {"sample_rate": 0.001, "samples": 3, "checked": 2, "misses": 0, "skipped": 1}})");
  const std::string t = format_invalidate(st);
  for (const char* want : {"pid 42", "waiting (cannot connect)", "slot s1", "confirmed 0/16",
                           "lag 26 B, 1.500 s", "problem: rule x: no table", "commits 5",
                           "in flight 1/4096", "deletes per packet 4.5", "repeated after restart 3",
                           "pool west", "10.0.0.1:11211", "2.0K  FULL",
                           "last error: connect: refused", "misses 0"})
    EXPECT_NE(t.find(want), std::string::npos) << want << " not in:\n" << t;
  const std::string s = format_status({{"invalidate", {{"state", "streaming"}, {"servers_up", "2/3"}}}});
  EXPECT_NE(s.find("cachet-invalidate"), std::string::npos) << s;
  EXPECT_NE(s.find("2/3"), std::string::npos) << s;
}

TEST(Views, ExitStatuses) {
  EXPECT_EQ(exit_status_for({{"ok", true}}), kExitOk);
  EXPECT_EQ(exit_status_for({{"ok", false}, {"code", "no_control"}}), kExitNoControl);
  EXPECT_EQ(exit_status_for({{"ok", false}, {"code", "refused"}}), kExitRefused);
  for (const char* c : {"usage", "unknown_key", "bad_value", "read_only"})
    EXPECT_EQ(exit_status_for({{"ok", false}, {"code", c}}), kExitUsage) << c;
  for (const char* c : {"failed", "busy", "unavailable", "whatever"})
    EXPECT_EQ(exit_status_for({{"ok", false}, {"code", c}}), kExitFailed) << c;
}

TEST(Views, NoControlProcess) {
  json r = control_call("/nonexistent/dir/control.sock", {{"cmd", "status"}}, 1000);
  EXPECT_EQ(exit_status_for(r), kExitNoControl) << r.dump();
  EXPECT_NE(r.value("error", "").find("no cachet-control is running"), std::string::npos);
}

TEST(Tunables, Table) {
  const DataplaneTunable* v = find_dataplane_tunable("dataplane.verbosity");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(tunable_command(*v, 2), "tunable verbosity 2");
  // Every entry of cachetd's table is offered, under its own name.
#define CACHET_X(name, def, lo, hi, desc)                                  \
  ASSERT_NE(find_dataplane_tunable("dataplane." #name), nullptr) << #name; \
  EXPECT_EQ(find_dataplane_tunable("dataplane." #name)->settings_key, #name);
  CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
  // Absurd values are refused with a message naming the key.
  const DataplaneTunable* i = find_dataplane_tunable("dataplane.slab_automove_interval_ms");
  ASSERT_NE(i, nullptr);
  int64_t x0;
  std::string err0;
  EXPECT_FALSE(parse_tunable_value(*i, "99", &x0, &err0));
  EXPECT_NE(err0.find("dataplane.slab_automove_interval_ms"), std::string::npos) << err0;
  EXPECT_FALSE(parse_tunable_value(*find_dataplane_tunable("dataplane.slab_automove"), "3", &x0,
                                   &err0));
  EXPECT_EQ(find_dataplane_tunable("verbosity"), nullptr);  // full names only
  int64_t x;
  std::string err;
  EXPECT_TRUE(parse_tunable_value(*v, "2", &x, &err));
  EXPECT_EQ(x, 2);
  for (const char* bad : {"4", "-1", "", "1x", "on"}) {
    EXPECT_FALSE(parse_tunable_value(*v, bad, &x, &err)) << bad;
    EXPECT_NE(err.find("dataplane.verbosity"), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace cachet::control
