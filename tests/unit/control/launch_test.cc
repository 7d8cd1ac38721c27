// cachetd command lines from the config and the flags after `--`, the admin endpoint, and the
// paths cachet-control derives.
#include "control/launch.hh"

#include <gtest/gtest.h>

#include <algorithm>

namespace cachet::control {
namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

Config with_binary() {
  Config c;
  c.dataplane_binary = "/opt/cachetd";
  return c;
}

TEST(Launch, DefaultsGiveAShortLine) {
  LaunchPlan p;
  std::string err;
  ASSERT_TRUE(make_plan(with_binary(), {}, &p, &err)) << err;
  EXPECT_EQ(p.binary, "/opt/cachetd");
  EXPECT_EQ(joined(p.args), "--shm cachet-11211");
  EXPECT_EQ(p.arena, "cachet-11211");
  EXPECT_EQ(p.settings.net.tcp_port, 11211);
}

TEST(Launch, ConfigValuesBecomeFlags) {
  Config c = with_binary();
  c.dataplane_port = 11311;
  c.dataplane_memory_mb = 256;
  c.dataplane_threads = 2;
  c.dataplane_tunables.verbosity = 2;
  c.dataplane_growth_factor = 1.07;
  c.dataplane_extra_args = {"-c", "99"};
  LaunchPlan p;
  std::string err;
  ASSERT_TRUE(make_plan(c, {}, &p, &err)) << err;
  EXPECT_EQ(joined(p.args), "--shm cachet-11311 -p 11311 -t 2 -m 256 -f 1.07 -v -v -c 99");
  EXPECT_EQ(p.settings.store.memory_mb, 256u);
  EXPECT_EQ(p.settings.net.max_conns, 99u);
  EXPECT_EQ(p.settings.tunables.verbosity, 2);
}

TEST(Launch, OverridesWinAndNameTheArena) {
  LaunchPlan p;
  std::string err;
  ASSERT_TRUE(make_plan(with_binary(), {"-p", "11311", "-m", "256"}, &p, &err)) << err;
  EXPECT_EQ(p.settings.net.tcp_port, 11311);
  EXPECT_EQ(p.settings.store.memory_mb, 256u);
  EXPECT_EQ(p.arena, "cachet-11311");
  Config c = with_binary();
  c.dataplane_arena = "from-config";
  ASSERT_TRUE(make_plan(c, {"--shm", "from-flags"}, &p, &err)) << err;
  EXPECT_EQ(p.arena, "from-flags");
  ASSERT_TRUE(make_plan(c, {}, &p, &err)) << err;
  EXPECT_EQ(p.arena, "from-config");
  ASSERT_TRUE(make_plan(with_binary(), {"-p", "0", "-U", "11999"}, &p, &err)) << err;
  EXPECT_EQ(p.arena, "cachet-u11999");
}

TEST(Launch, VerbosityFromOverridesReplacesTheConfigs) {
  Config c = with_binary();
  c.dataplane_tunables.verbosity = 1;
  LaunchPlan p;
  std::string err;
  ASSERT_TRUE(make_plan(c, {"-vv"}, &p, &err)) << err;
  EXPECT_EQ(p.settings.tunables.verbosity, 2);
  EXPECT_EQ(override_verbosity({"-vv"}), 2);
  EXPECT_EQ(override_verbosity({"-p", "1"}), -1);
  EXPECT_EQ(override_verbosity({"-I", "4m"}), -1);  // -I alone is not refused here
}

TEST(Launch, BadInputIsNamed) {
  LaunchPlan p;
  std::string err;
  EXPECT_FALSE(make_plan(with_binary(), {"-p", "x"}, &p, &err));
  EXPECT_NE(err.find("flags after --"), std::string::npos) << err;
  EXPECT_NE(err.find("-p"), std::string::npos) << err;
  EXPECT_FALSE(make_plan(with_binary(), {"--admin-socket", "/x"}, &p, &err));
  EXPECT_NE(err.find("managed by cachet-control"), std::string::npos) << err;
  EXPECT_FALSE(make_plan(with_binary(), {"--takeover=/x"}, &p, &err));
  Config c = with_binary();
  c.dataplane_extra_args = {"--bogus"};
  EXPECT_FALSE(make_plan(c, {}, &p, &err));
  EXPECT_NE(err.find("dataplane.extra_args"), std::string::npos) << err;
  c = with_binary();
  c.dataplane_memory_mb = 8;
  c.dataplane_item_size_max = 8 << 20;
  EXPECT_FALSE(make_plan(c, {}, &p, &err));
  EXPECT_NE(err.find("-I"), std::string::npos) << err;
  c = with_binary();
  c.dataplane_port = 70000;  // set behind the parser's back
  EXPECT_FALSE(make_plan(c, {}, &p, &err));
  EXPECT_NE(err.find("dataplane.port"), std::string::npos) << err;
}

TEST(Launch, CommandLineAndAdminEndpoint) {
  LaunchPlan p;
  std::string err;
  ASSERT_TRUE(make_plan(with_binary(), {"-l", "0.0.0.0", "-p", "11400"}, &p, &err)) << err;
  Capabilities old_binary;  // no --admin-socket
  auto argv = command_line(p, old_binary, "/run/x.sock", {"--shm-discard"});
  EXPECT_EQ(argv.front(), "/opt/cachetd");
  EXPECT_EQ(std::find(argv.begin(), argv.end(), "--admin-socket"), argv.end());
  EXPECT_EQ(argv.back(), "--shm-discard");
  AdminEndpoint ep = admin_endpoint(p, old_binary, "/run/x.sock");
  EXPECT_EQ(ep.host, "127.0.0.1");  // the wildcard is reached on loopback
  EXPECT_EQ(ep.port, 11400);
  EXPECT_TRUE(ep.unix_path.empty());
  Capabilities caps{true, true};
  argv = command_line(p, caps, "/run/x.sock", {"--takeover", "/run/old.sock"});
  EXPECT_NE(joined(argv).find("--admin-socket /run/x.sock --takeover /run/old.sock"),
            std::string::npos)
      << joined(argv);
  ep = admin_endpoint(p, caps, "/run/x.sock");
  EXPECT_EQ(ep.unix_path, "/run/x.sock");
  EXPECT_EQ(ep.describe(), "/run/x.sock");
}

TEST(Launch, Paths) {
  EXPECT_EQ(arena_files("/some/file"), std::vector<std::string>{"/some/file"});
  auto files = arena_files("cachet-1");
  ASSERT_FALSE(files.empty());
  EXPECT_EQ(files.back(), "/dev/shm/cachet-1");
  EXPECT_TRUE(arena_files("").empty());
  EXPECT_NE(default_socket_path().find("control.sock"), std::string::npos);
  // The unit test binary lives in <builddir>/tests/unit/control: no cachetd next to it.
  const std::string b = default_binary();
  EXPECT_TRUE(b.empty() || b.find("cachetd") != std::string::npos) << b;
}

TEST(Launch, ProbeBinary) {
  Capabilities caps;
  std::string err;
  EXPECT_FALSE(probe_binary("/nonexistent/cachetd", &caps, &err));
  EXPECT_NE(err.find("/nonexistent/cachetd"), std::string::npos) << err;
  EXPECT_FALSE(probe_binary("/bin/false", &caps, &err));  // -h fails
  EXPECT_NE(err.find("status 1"), std::string::npos) << err;
}

}  // namespace
}  // namespace cachet::control
