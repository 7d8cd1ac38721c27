// cachet-control's config: defaults (and that they are cachetd's), every key read from TOML,
// the embedded default config reading back to the defaults, and bad input naming the key.
#include "control/config.hh"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "dataplane/settings.hh"

namespace cachet::control {
namespace {

bool parse(const std::string& text, Config* c, std::string* err) {
  return parse_config(text, "test.toml", c, err);
}

// A valid value other than the default, as TOML, for every key.
std::string other_value(const OptionInfo& o) {
  const std::string name = o.name();
  if (name == "control.socket") return "'/tmp/x/control.sock'";
  if (name == "control.log_level") return "'debug'";
  if (name == "invalidate.socket") return "'/tmp/x/invalidate.sock'";
  if (name == "dataplane.binary") return "'/opt/cachet/cachetd'";
  if (name == "dataplane.arena") return "'my-arena'";
  if (name == "dataplane.listen") return "'127.0.0.2'";
  if (name == "dataplane.driver") return "'dpdk'";
  if (name == "dataplane.extra_args") return "['-c', '99']";
  if (name == "dataplane.growth_factor") return "1.07";
  if (name == "dataplane.verbosity") return "2";
  if (name == "dataplane.item_size_max") return "524288";
  if (name == "dataplane.chunk_min") return "96";
  if (name == "dataplane.memory_mb") return "128";
  if (o.hi > o.lo) {  // in range and not the default: the tunables
    const int64_t def = std::stoll(value_toml(Config{}, o));
    return std::to_string(def == o.hi ? o.lo : o.hi);
  }
  return std::to_string(o.lo > 7 ? o.lo + 1 : 7);  // the other integers
}

TEST(Config, DefaultsAreCachetdDefaults) {
  const Config c;
  const dataplane::Settings s;
  EXPECT_EQ(c.dataplane_port, s.net.tcp_port);
  EXPECT_EQ(c.dataplane_udp_port, s.net.udp_port);
  EXPECT_EQ(c.dataplane_threads, s.net.threads);
  EXPECT_EQ(c.dataplane_conn_limit, s.net.max_conns);
  EXPECT_EQ(c.dataplane_memory_mb, static_cast<int64_t>(s.store.memory_mb));
  EXPECT_EQ(c.dataplane_item_size_max, s.store.item_size_max);
  EXPECT_EQ(c.dataplane_chunk_min, s.store.chunk_min);
  EXPECT_DOUBLE_EQ(c.dataplane_growth_factor, s.store.growth_factor);
  EXPECT_EQ(c.dataplane_listen, s.net.listen);
  EXPECT_EQ(c.dataplane_driver, s.driver);
  EXPECT_EQ(c.dataplane_tunables.slab_automove, s.tunables.slab_automove);
  EXPECT_EQ(c.dataplane_tunables.slab_automove_interval_ms, s.tunables.slab_automove_interval_ms);
  EXPECT_EQ(c.dataplane_tunables.slab_automove_threshold, s.tunables.slab_automove_threshold);
  EXPECT_EQ(c.dataplane_tunables.transient_ttl, s.tunables.transient_ttl);
  EXPECT_EQ(c.dataplane_maintenance_threads, s.maintenance_threads);
  EXPECT_EQ(c.metrics_port, 9211);
  EXPECT_EQ(c.supervisor_backoff_initial_ms, 100);
  EXPECT_EQ(c.supervisor_backoff_max_ms, 30000);
  EXPECT_EQ(c.dataplane_tunables.lease_window, s.tunables.lease_window);
  EXPECT_EQ(c.dataplane_tunables.stale_window, s.tunables.stale_window);
}

TEST(Config, EveryKeyIsReadFromToml) {
  for (const OptionInfo& o : options()) {
    Config c;
    std::string err;
    const std::string v = other_value(o);
    ASSERT_TRUE(parse(fmt::format("[{}]\n{} = {}\n", o.section, o.key, v), &c, &err))
        << o.name() << ": " << err;
    EXPECT_NE(value_toml(c, o), value_toml(Config{}, o)) << o.name() << " kept its default";
    Config again;
    ASSERT_TRUE(parse(fmt::format("[{}]\n{} = {}\n", o.section, o.key, value_toml(c, o)), &again,
                      &err))
        << o.name() << ": " << err;
    EXPECT_EQ(value_toml(again, o), value_toml(c, o)) << o.name();
  }
}

TEST(Config, DefaultConfigTextReadsBackToDefaults) {
  const std::string text = default_config_text();
  Config c;
  c.dataplane_port = 1;  // must be overwritten by the text
  std::string err;
  ASSERT_TRUE(parse(text, &c, &err)) << err;
  for (const OptionInfo& o : options()) {
    EXPECT_EQ(value_toml(c, o), value_toml(Config{}, o)) << o.name();
    EXPECT_NE(text.find(std::string(o.description.substr(0, 20))), std::string::npos)
        << o.name() << " has no description in the default config";
  }
}

TEST(Config, EmptyFileKeepsDefaults) {
  Config c;
  std::string err;
  ASSERT_TRUE(parse("", &c, &err)) << err;
  EXPECT_EQ(value_toml(c, *find_option("dataplane.port")), "11211");
}

struct Bad {
  const char* toml;
  const char* needle1;
  const char* needle2;
};

TEST(Config, BadInputNamesTheKey) {
  const Bad cases[] = {
      {"[dataplane]\nprot = 1\n", "dataplane.prot", "test.toml:2"},
      {"[nosuch]\nx = 1\n", "nosuch", "section"},
      {"top = 1\n", "top", "section"},
      {"[dataplane]\nport = 'x'\n", "dataplane.port", "integer"},
      {"[dataplane]\nport = 1.5\n", "dataplane.port", "integer"},
      {"[dataplane]\nport = 65536\n", "dataplane.port", "65536"},
      {"[dataplane]\nport = -1\n", "dataplane.port", "-1"},
      {"[dataplane]\nthreads = 0\n", "dataplane.threads", "0"},
      {"[dataplane]\nthreads = 5000\n", "dataplane.threads", "5000"},
      {"[dataplane]\nmemory_mb = 0\n", "dataplane.memory_mb", "0"},
      {"[dataplane]\nitem_size_max = 10\n", "dataplane.item_size_max", "1024"},
      {"[dataplane]\nchunk_min = 2000\n", "dataplane.chunk_min", "2000"},
      {"[dataplane]\ngrowth_factor = 0.5\n", "dataplane.growth_factor", "0.5"},
      {"[dataplane]\ngrowth_factor = 'big'\n", "dataplane.growth_factor", "number"},
      {"[dataplane]\ndriver = 'netmap'\n", "dataplane.driver", "netmap"},
      {"[dataplane]\nverbosity = 4\n", "dataplane.verbosity", "0-3"},
      {"[dataplane]\nlease_window = 0\n", "dataplane.lease_window", "1-3600"},
      {"[dataplane]\nstale_window = 'x'\n", "dataplane.stale_window", "integer"},
      {"[dataplane]\nholdoff_max = 100000\n", "dataplane.holdoff_max", "0-86400"},
      {"[dataplane]\nleases = 2\n", "dataplane.leases", "0-1"},
      {"[dataplane]\nextra_args = '-v'\n", "dataplane.extra_args", "array"},
      {"[dataplane]\nextra_args = [1]\n", "dataplane.extra_args", "array of strings"},
      {"[dataplane]\nbinary = 3\n", "dataplane.binary", "string"},
      {"[supervisor]\nbackoff_initial_ms = 0\n", "supervisor.backoff_initial_ms", "range"},
      {"[supervisor]\nstop_timeout_ms = 99999999\n", "supervisor.stop_timeout_ms", "range"},
      {"[upgrade]\nready_timeout_ms = 1\n", "upgrade.ready_timeout_ms", "range"},
      {"[metrics]\nport = 70000\n", "metrics.port", "70000"},
      {"[control]\nlog_level = 'loud'\n", "control.log_level", "loud"},
      {"[dataplane\n", "test.toml:1", ""},
      {"[dataplane]\nport = 1\nport = 2\n", "test.toml:3", ""},
  };
  for (const Bad& b : cases) {
    Config c;
    std::string err;
    EXPECT_FALSE(parse(b.toml, &c, &err)) << b.toml;
    EXPECT_NE(err.find(b.needle1), std::string::npos) << b.toml << " -> " << err;
    EXPECT_NE(err.find(b.needle2), std::string::npos) << b.toml << " -> " << err;
    EXPECT_EQ(value_toml(c, *find_option("dataplane.port")), "11211") << "changed on failure";
  }
}

TEST(Config, SetOption) {
  Config c;
  std::string err;
  const OptionInfo* backoff = find_option("supervisor.backoff_max_ms");
  ASSERT_NE(backoff, nullptr);
  EXPECT_TRUE(set_option(c, *backoff, "5000", &err)) << err;
  EXPECT_EQ(c.supervisor_backoff_max_ms, 5000);
  for (const char* v : {"", "abc", "5000x", "-5", "0", "99999999999"}) {
    EXPECT_FALSE(set_option(c, *backoff, v, &err)) << v;
    EXPECT_NE(err.find("supervisor.backoff_max_ms"), std::string::npos) << err;
    EXPECT_EQ(c.supervisor_backoff_max_ms, 5000) << "changed on failure";
  }
  EXPECT_FALSE(set_option(c, *find_option("control.log_level"), "verbose", &err));
  EXPECT_TRUE(set_option(c, *find_option("control.log_level"), "warn", &err)) << err;
  EXPECT_FALSE(set_option(c, *find_option("dataplane.extra_args"), "-v", &err));
  EXPECT_EQ(find_option("nosuch.key"), nullptr);
}

TEST(Config, RuntimeFlagsAreTheIntendedOnes) {
  // Start-only options must not pretend to change at run time.
  for (const char* k : {"dataplane.port", "dataplane.memory_mb", "dataplane.binary",
                        "dataplane.arena", "control.socket"})
    EXPECT_FALSE(find_option(k)->runtime) << k;
  for (const char* k : {"dataplane.verbosity", "supervisor.backoff_max_ms", "metrics.port"})
    EXPECT_TRUE(find_option(k)->runtime) << k;
}

// docs/CONTROL.md's reference table names every option with its default.
TEST(Config, DocumentedWithDefaults) {
  const char* root = std::getenv("CACHET_SOURCE_ROOT");
  if (!root) GTEST_SKIP() << "CACHET_SOURCE_ROOT not set (meson test sets it)";
  std::ifstream f(std::string(root) + "/docs/CONTROL.md");
  ASSERT_TRUE(f) << "docs/CONTROL.md";
  std::map<std::string, std::string> rows;
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("| `", 0) == 0) rows[line.substr(3, line.find('`', 3) - 3)] = line;
  const Config d;
  for (const OptionInfo& o : options()) {
    auto it = rows.find(o.name());
    ASSERT_NE(it, rows.end()) << o.name() << " is not in docs/CONTROL.md's table";
    std::string def = value_text(d, o);
    if (o.kind == Kind::text) def = "\"" + def + "\"";
    if (o.kind == Kind::list) def = "[]";
    EXPECT_NE(it->second.find("`" + def + "`"), std::string::npos)
        << o.name() << ": default " << def << " not in: " << it->second;
    EXPECT_EQ(it->second.find("| yes |") != std::string::npos, o.runtime) << it->second;
  }
}

}  // namespace
}  // namespace cachet::control
