// Per-worker counters (sums, reset, layout) and the `stats` replies: memcached 1.6.18's names in
// memcached's order, values that follow the requests made.
#include "dataplane/stats.hh"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/dataplane/helpers.hh"

namespace cachet::dataplane::testing {
namespace {

// Names memcached 1.6.18 prints for `stats` and `stats settings`, in its order (taken from the
// real binary).
const std::vector<std::string> kMemcachedStats = {
    "pid", "uptime", "time", "version", "libevent", "pointer_size", "rusage_user",
    "rusage_system", "max_connections", "curr_connections", "total_connections",
    "rejected_connections", "connection_structures", "response_obj_oom", "response_obj_count",
    "response_obj_bytes", "read_buf_count", "read_buf_bytes", "read_buf_bytes_free",
    "read_buf_oom", "reserved_fds", "cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "cmd_meta",
    "get_hits", "get_misses", "get_expired", "get_flushed", "delete_misses", "delete_hits",
    "incr_misses", "incr_hits", "decr_misses", "decr_hits", "cas_misses", "cas_hits",
    "cas_badval", "touch_hits", "touch_misses", "store_too_large", "store_no_memory",
    "auth_cmds", "auth_errors", "bytes_read", "bytes_written", "limit_maxbytes",
    "accepting_conns", "listen_disabled_num", "time_in_listen_disabled_us", "threads",
    "conn_yields", "hash_power_level", "hash_bytes", "hash_is_expanding",
    "slab_reassign_rescues", "slab_reassign_chunk_rescues", "slab_reassign_evictions_nomem",
    "slab_reassign_inline_reclaim", "slab_reassign_busy_items", "slab_reassign_busy_deletes",
    "slab_reassign_running", "slabs_moved", "lru_crawler_running", "lru_crawler_starts",
    "lru_maintainer_juggles", "malloc_fails", "log_worker_dropped", "log_worker_written",
    "log_watcher_skipped", "log_watcher_sent", "log_watchers", "unexpected_napi_ids",
    "round_robin_fallback", "bytes", "curr_items", "total_items", "slab_global_page_pool",
    "expired_unfetched", "evicted_unfetched", "evicted_active", "evictions", "reclaimed",
    "crawler_reclaimed", "crawler_items_checked", "lrutail_reflocked", "moves_to_cold",
    "moves_to_warm", "moves_within_lru", "direct_reclaims", "lru_bumps_dropped"};

const std::vector<std::string> kMemcachedSettings = {
    "maxbytes", "maxconns", "tcpport", "udpport", "inter", "verbosity", "oldest", "evictions",
    "domain_socket", "umask", "shutdown_command", "growth_factor", "chunk_size", "num_threads",
    "num_threads_per_udp", "stat_key_prefix", "detail_enabled", "reqs_per_event", "cas_enabled",
    "tcp_backlog", "binding_protocol", "auth_enabled_sasl", "auth_enabled_ascii",
    "item_size_max", "maxconns_fast", "hashpower_init", "slab_reassign", "slab_automove",
    "slab_automove_ratio", "slab_automove_window", "slab_chunk_max", "lru_crawler",
    "lru_crawler_sleep", "lru_crawler_tocrawl", "tail_repair_time", "flush_enabled",
    "dump_enabled", "hash_algorithm"};

// The names of the STAT lines of a reply; checks the reply is STAT lines then END.
std::vector<std::string> stat_names(const std::string& reply) {
  std::vector<std::string> names;
  std::istringstream in(reply);
  std::string line;
  bool ended = false;
  while (std::getline(in, line)) {
    EXPECT_FALSE(ended) << "bytes after END";
    EXPECT_TRUE(!line.empty() && line.back() == '\r') << line;
    line.pop_back();
    if (line == "END") {
      ended = true;
      continue;
    }
    EXPECT_EQ(line.rfind("STAT ", 0), 0u) << line;
    std::istringstream l(line.substr(5));
    std::string name, value, extra;
    l >> name >> value;
    EXPECT_FALSE(value.empty()) << line;
    EXPECT_FALSE(l >> extra) << line;
    names.push_back(name);
  }
  EXPECT_TRUE(ended);
  return names;
}

// Cachet's own general stats, printed after memcached's.
const std::vector<std::string> kCachetOwn = {
    "crash_dropped", "hidden_items",
#define CACHET_X(name, desc) #name,
    CACHET_DIALECT_STATS(CACHET_X)
#undef CACHET_X
    "slabs_moved_inline", "crash_orphans_freed", "transient_items", "transient_added",
    "transient_reaped", "transient_untracked", "transient_bytes", "kv_bytes", "mem_bytes",
    "mem_per_kv_byte",
    "udp_datagrams_in", "udp_datagrams_out",
#define CACHET_X(name, desc) "udp_drop_" #name,
    CACHET_UDP_DROPS(CACHET_X)
#undef CACHET_X
};

// Every name is memcached's, in memcached's order, except Cachet's own ones at the end.
void expect_memcached_order(std::vector<std::string> ours,
                            const std::vector<std::string>& theirs) {
  size_t own = 0;
  while (!ours.empty() && own < kCachetOwn.size() && ours.back() == kCachetOwn[kCachetOwn.size() - 1 - own]) {
    ours.pop_back();
    ++own;
  }
  size_t at = 0;
  for (const auto& n : ours) {
    size_t p = at;
    while (p < theirs.size() && theirs[p] != n) ++p;
    ASSERT_LT(p, theirs.size()) << n << " is not in memcached's list after position " << at;
    at = p + 1;
  }
}

TEST(StatsBoard, SumsWorkersAndResets) {
  StatsBoard b(3);
  b.worker(0).cmd_get.add(2);
  b.worker(1).cmd_get.add(3);
  b.worker(2).get_hits.add();
  EXPECT_EQ(b.totals().cmd_get, 5u);
  EXPECT_EQ(b.totals().get_hits, 1u);
  b.reset();
  EXPECT_EQ(b.totals().cmd_get, 0u);
  b.worker(1).cmd_get.add();
  EXPECT_EQ(b.totals().cmd_get, 1u);
  // Each worker's counters sit on their own cache lines.
  auto a0 = reinterpret_cast<uintptr_t>(&b.worker(0));
  auto a1 = reinterpret_cast<uintptr_t>(&b.worker(1));
  EXPECT_EQ(a0 % 64, 0u);
  EXPECT_GE(a1 - a0, sizeof(WorkerStats));
}

using StatsTest = DataplaneTest;

TEST_F(StatsTest, GeneralStatsFollowRequests) {
  run("set a 0 0 5\r\nhello\r\nget a b\r\ndelete b\r\ntouch a 0\r\n");
  std::string s = run("stats\r\n");
  expect_memcached_order(stat_names(s), kMemcachedStats);
  EXPECT_EQ(stat_value(s, "version"), "1.6.18-cachet-0.1.0");
  EXPECT_EQ(stat_value(s, "pointer_size"), "64");
  EXPECT_EQ(stat_value(s, "cmd_get"), "2");
  EXPECT_EQ(stat_value(s, "get_hits"), "1");
  EXPECT_EQ(stat_value(s, "get_misses"), "1");
  EXPECT_EQ(stat_value(s, "cmd_set"), "1");
  EXPECT_EQ(stat_value(s, "delete_misses"), "1");
  EXPECT_EQ(stat_value(s, "cmd_touch"), "1");
  EXPECT_EQ(stat_value(s, "touch_hits"), "1");
  EXPECT_EQ(stat_value(s, "curr_items"), "1");
  EXPECT_EQ(stat_value(s, "total_items"), "1");
  EXPECT_EQ(stat_value(s, "limit_maxbytes"), std::to_string(8 << 20));
  EXPECT_EQ(stat_value(s, "threads"), "1");
  EXPECT_EQ(stat_value(s, "curr_connections"), "0");  // no driver attached
  EXPECT_NE(stat_value(s, "bytes"), "0");
  EXPECT_NE(stat_value(s, "rusage_user").find('.'), std::string::npos);

  // Why a get missed is the store's knowledge: expired and flushed items.
  run("set e 0 -1 1\r\nx\r\nget e\r\nset f 0 0 1\r\nx\r\nflush_all\r\nget f\r\n");
  s = run("stats\r\n");
  EXPECT_EQ(stat_value(s, "get_expired"), "1");
  EXPECT_EQ(stat_value(s, "get_flushed"), "1");
  EXPECT_EQ(stat_value(s, "get_misses"), "3");

  EXPECT_EQ(run("stats reset\r\n"), "RESET\r\n");
  s = run("stats\r\n");
  EXPECT_EQ(stat_value(s, "cmd_get"), "0");
  EXPECT_EQ(stat_value(s, "get_expired"), "0");
  EXPECT_EQ(stat_value(s, "curr_items"), "1");  // flushed "a" stays linked until read
}

TEST_F(StatsTest, SettingsItemsSlabs) {
  std::string s = run("stats settings\r\n");
  std::vector<std::string> names = stat_names(s);
  ASSERT_FALSE(names.empty());
  // Cachet's own, after memcached's: the driver and the run-time tunables memcached lacks.
  std::vector<std::string> own;
#define CACHET_X(name, def, lo, hi, desc)                                                   \
  if (std::string_view(#name) != "verbosity" && std::string_view(#name) != "slab_automove") { \
    EXPECT_EQ(stat_value(s, #name), std::to_string(def));                                 \
    own.push_back(#name);                                                                 \
  }
  CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
  for (auto it = own.rbegin(); it != own.rend(); ++it) {
    ASSERT_EQ(names.back(), *it);
    names.pop_back();
  }
  ASSERT_EQ(names.back(), "maintenance_threads");
  names.pop_back();
  ASSERT_EQ(names.back(), "driver");
  names.pop_back();
  expect_memcached_order(names, kMemcachedSettings);
  EXPECT_EQ(stat_value(s, "maxbytes"), std::to_string(8 << 20));
  EXPECT_EQ(stat_value(s, "item_size_max"), "1048576");
  EXPECT_EQ(stat_value(s, "growth_factor"), "1.25");
  EXPECT_EQ(stat_value(s, "cas_enabled"), "yes");
  EXPECT_EQ(stat_value(s, "slab_automove_ratio"), "0.80");  // the threshold's default, 20%
  EXPECT_EQ(stat_value(s, "maintenance_threads"), "1");

  EXPECT_EQ(run("stats items\r\n"), "END\r\n");  // no items yet
  run("set a 0 0 5\r\nhello\r\nset b 0 0 3000\r\n" + std::string(3000, 'x') + "\r\nget a\r\n");
  s = run("stats items\r\n");
  names = stat_names(s);
  ASSERT_EQ(names.size(), 20u);  // two classes with ten fields each
  EXPECT_EQ(names[0].rfind("items:", 0), 0u);
  EXPECT_EQ(names[0].substr(names[0].rfind(':')), ":number");
  EXPECT_EQ(names[9].substr(names[9].rfind(':')), ":evicted_unfetched");
  EXPECT_EQ(stat_value(s, names[0]), "1");

  s = run("stats slabs\r\n");
  names = stat_names(s);
  ASSERT_GE(names.size(), 17u);
  EXPECT_EQ(names[names.size() - 2], "active_slabs");
  EXPECT_EQ(names.back(), "total_malloced");
  EXPECT_EQ(names[0].substr(names[0].find(':')), ":chunk_size");
  EXPECT_EQ(names[14].substr(names[14].find(':')), ":touch_hits");
  EXPECT_EQ(stat_value(s, "active_slabs"), std::to_string((names.size() - 2) / 15));
}

TEST_F(StatsTest, OtherSubcommands) {
  EXPECT_EQ(run("stats detail\r\nstats detail on\r\nstats detail off\r\nstats detail dump\r\n"
                "stats detail x\r\n"),
            "CLIENT_ERROR usage: stats detail on|off|dump\r\nOK\r\nOK\r\nEND\r\n"
            "CLIENT_ERROR usage: stats detail on|off|dump\r\n");
  EXPECT_EQ(run("stats foo\r\nstats cachedump\r\nstats cachedump 1 1\r\nstats cachedump 64 1\r\n"
                "stats cachedump x 1\r\nstats sizes\r\nstats reset now\r\n"),
            "ERROR\r\nCLIENT_ERROR bad command line\r\nEND\r\nCLIENT_ERROR Illegal slab id\r\n"
            "CLIENT_ERROR bad command line format\r\nSTAT sizes_status disabled\r\nEND\r\n"
            "RESET\r\n");
}

}  // namespace
}  // namespace cachet::dataplane::testing
