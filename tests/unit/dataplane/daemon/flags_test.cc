// cachetd's flags: defaults, every flag in short and long form, unit suffixes, every bad value
// named in its error, and a help text that lists every option with its default.
#include "dataplane/daemon/flags.hh"

#include <gtest/gtest.h>

#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

namespace cachet::dataplane {
namespace {

struct Parsed {
  bool ok = false;
  bool help = false;
  std::string error;
  Settings s;
};

Parsed parse(std::initializer_list<const char*> args) {
  std::vector<std::string> storage{"cachetd"};
  for (const char* a : args) storage.emplace_back(a);
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  Parsed p;
  p.ok = parse_flags(static_cast<int>(storage.size()), argv.data(), p.s, &p.error, &p.help);
  return p;
}

TEST(Flags, DefaultsAreTheSettingsDefaults) {
  Parsed p = parse({});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_FALSE(p.help);
  EXPECT_EQ(p.s.net.tcp_port, 11211);
  EXPECT_EQ(p.s.net.udp_port, 0);
  EXPECT_EQ(p.s.net.listen, "127.0.0.1");
  EXPECT_EQ(p.s.net.threads, 4u);
  EXPECT_EQ(p.s.net.max_conns, 1024u);
  EXPECT_EQ(p.s.store.memory_mb, 64u);
  EXPECT_EQ(p.s.store.item_size_max, 1024u * 1024);
  EXPECT_EQ(p.s.store.chunk_min, 64u);
  EXPECT_DOUBLE_EQ(p.s.store.growth_factor, 1.25);
  EXPECT_EQ(p.s.store.shm, "");
  EXPECT_FALSE(p.s.store.discard_incompatible);
  EXPECT_EQ(p.s.driver, "uring");
  EXPECT_EQ(p.s.tunables.verbosity, 0);
  EXPECT_EQ(p.s.store.workers, 4u);
}

TEST(Flags, EveryFlagShortForm) {
  Parsed p = parse({"-p", "12345", "-U", "12346", "-l", "0.0.0.0,[::1]:11311", "-t", "8", "-c",
                    "100", "-m", "128", "-I", "2m", "-n", "48", "-f", "1.25", "-vv", "--driver",
                    "dpdk", "--shm", "cachet-test", "--shm-discard"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.s.net.tcp_port, 12345);
  EXPECT_EQ(p.s.net.udp_port, 12346);
  EXPECT_EQ(p.s.net.listen, "0.0.0.0,[::1]:11311");
  EXPECT_EQ(p.s.net.threads, 8u);
  EXPECT_EQ(p.s.store.workers, 8u);
  EXPECT_EQ(p.s.net.max_conns, 100u);
  EXPECT_EQ(p.s.store.memory_mb, 128u);
  EXPECT_EQ(p.s.store.item_size_max, 2u << 20);
  EXPECT_EQ(p.s.store.chunk_min, 48u);
  EXPECT_DOUBLE_EQ(p.s.store.growth_factor, 1.25);
  EXPECT_EQ(p.s.tunables.verbosity, 2);
  EXPECT_EQ(p.s.driver, "dpdk");
  EXPECT_EQ(p.s.store.shm, "cachet-test");
  EXPECT_TRUE(p.s.store.discard_incompatible);
}

TEST(Flags, EveryFlagLongForm) {
  Parsed p = parse({"--port=1", "--udp-port", "2", "--listen=::1", "--threads=3",
                    "--conn-limit=5", "--memory-limit=256", "--max-item-size=4096",
                    "--slab-min-size=96", "--slab-growth-factor=2", "--verbose", "--verbose",
                    "--verbose", "--driver=uring", "--shm=/dev/shm/x"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.s.net.tcp_port, 1);
  EXPECT_EQ(p.s.net.udp_port, 2);
  EXPECT_EQ(p.s.net.listen, "::1");
  EXPECT_EQ(p.s.net.threads, 3u);
  EXPECT_EQ(p.s.net.max_conns, 5u);
  EXPECT_EQ(p.s.store.memory_mb, 256u);
  EXPECT_EQ(p.s.store.item_size_max, 4096u);
  EXPECT_EQ(p.s.store.chunk_min, 96u);
  EXPECT_DOUBLE_EQ(p.s.store.growth_factor, 2.0);
  EXPECT_EQ(p.s.tunables.verbosity, 3);
  EXPECT_EQ(p.s.store.shm, "/dev/shm/x");
}

TEST(Flags, SizeSuffixes) {
  EXPECT_EQ(parse({"-I", "512k"}).s.store.item_size_max, 512u * 1024);
  EXPECT_EQ(parse({"-I", "1M"}).s.store.item_size_max, 1u << 20);
  EXPECT_EQ(parse({"-I", "1024"}).s.store.item_size_max, 1024u);
  EXPECT_EQ(parse({"-m", "2048", "-I", "1g"}).s.store.item_size_max, 1u << 30);
  EXPECT_EQ(parse({"-m", "2g"}).s.store.memory_mb, 2048u);
  EXPECT_EQ(parse({"-m", "512m"}).s.store.memory_mb, 512u);
  EXPECT_EQ(parse({"-p", "0"}).s.net.tcp_port, 0);  // TCP off, as memcached
  EXPECT_EQ(parse({"-p", "65535"}).s.net.tcp_port, 65535);
  Parsed v = parse({"-v", "-v", "-vv"});
  EXPECT_EQ(v.s.tunables.verbosity, 3);  // -vvvv is -vvv: trace is the most there is
}

TEST(Flags, HelpStopsParsing) {
  Parsed p = parse({"-h", "--no-such-flag"});
  EXPECT_TRUE(p.ok);
  EXPECT_TRUE(p.help);
  Parsed q = parse({"--help"});
  EXPECT_TRUE(q.ok && q.help);
}

TEST(Flags, ParsesAgainInTheSameProcess) {
  EXPECT_EQ(parse({"-p", "1000"}).s.net.tcp_port, 1000);
  EXPECT_EQ(parse({"-p", "2000"}).s.net.tcp_port, 2000);
  EXPECT_EQ(parse({}).s.net.tcp_port, 11211);
}

struct Bad {
  std::vector<const char*> args;
  const char* must_name;  // the error names this flag (or argument)
};

TEST(Flags, EveryBadValueNamesItsFlag) {
  const std::vector<Bad> cases = {
      {{"-p", "70000"}, "-p"},       {{"-p", "abc"}, "-p"},
      {{"-p", "-1"}, "-p"},          {{"-p", ""}, "-p"},
      {{"--port=1x"}, "-p"},         {{"-U", "65536"}, "-U"},
      {{"-t", "0"}, "-t"},           {{"-t", "abc"}, "-t"},
      {{"-t", "5000"}, "-t"},        {{"-c", "0"}, "-c"},
      {{"-c", "many"}, "-c"},        {{"-m", "abc"}, "-m"},
      {{"-m", "0"}, "-m"},           {{"-m", "12x"}, "-m"},
      {{"-m", "64k"}, "-m"},         {{"-m", "99999999999"}, "-m"},
      {{"-I", "512"}, "-I"},         {{"-I", "2g"}, "-I"},
      {{"-I", "1q"}, "-I"},          {{"-I", "k"}, "-I"},
      {{"-I", "64m"}, "-I"},  // more than half of the default -m 64
      {{"-m", "64", "-I", "33m"}, "-I"},
      {{"-f", "1.0"}, "-f"},         {{"-f", "abc"}, "-f"},
      {{"-f", "3"}, "-f"},           {{"-f", "1.5x"}, "-f"},
      {{"-n", "0"}, "-n"},           {{"-n", "abc"}, "-n"},
      {{"-n", "2000"}, "-n"},        {{"--driver", "foo"}, "--driver"},
      {{"--shm", ""}, "--shm"},      {{"--shm-discard=yes"}, "--shm-discard"},
      {{"-p"}, "-p"},                {{"--driver"}, "--driver"},
      {{"-d"}, "-d"},                {{"-x"}, "-x"},
      {{"--daemon"}, "--daemon"},    {{"--no-such-flag=1"}, "--no-such-flag"},
      {{"stray"}, "stray"},          {{"-p", "1", "extra"}, "extra"},
  };
  for (const Bad& c : cases) {
    std::vector<std::string> storage{"cachetd"};
    std::string shown;
    for (const char* a : c.args) {
      storage.emplace_back(a);
      shown += std::string(a) + " ";
    }
    std::vector<char*> argv;
    for (auto& a : storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    Settings s;
    std::string err;
    bool help = false;
    EXPECT_FALSE(parse_flags(static_cast<int>(storage.size()), argv.data(), s, &err, &help))
        << shown;
    EXPECT_NE(err.find(c.must_name), std::string::npos) << shown << "-> " << err;
  }
}

TEST(Flags, UnknownFlagIsNamedAsWritten) {
  Parsed p = parse({"-d"});
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.error, "unknown option '-d'");
  Parsed q = parse({"--daemon"});
  EXPECT_EQ(q.error, "unknown option '--daemon'");
}

// The help line for a flag: the one line of usage() that holds it.
std::string help_line(const std::string& help, const std::string& flag) {
  std::istringstream in(help);
  std::string line, found;
  int n = 0;
  while (std::getline(in, line))
    if (line.find(flag) != std::string::npos && line.find(flag) < 12) {
      found = line;
      ++n;
    }
  return n == 1 ? found : "";
}

TEST(Flags, UsageListsEveryOptionWithItsDefault) {
  const std::string u = usage();
  // Literal expectations, so that a changed default shows here too.
  EXPECT_NE(help_line(u, "-p, --port").find("(default: 11211)"), std::string::npos) << u;
  EXPECT_NE(help_line(u, "-U, --udp-port").find("(default: 0)"), std::string::npos) << u;
  EXPECT_NE(help_line(u, "-l, --listen").find("(default: 127.0.0.1)"), std::string::npos) << u;
  EXPECT_NE(help_line(u, "-t, --threads").find("(default: 4)"), std::string::npos) << u;
  EXPECT_NE(help_line(u, "-c, --conn-limit").find("(default: 1024)"), std::string::npos) << u;
  EXPECT_NE(help_line(u, "-m, --memory-limit").find("(default: 64)"), std::string::npos) << u;
  EXPECT_NE(help_line(u, "-I, --max-item-size").find("(default: 1048576)"), std::string::npos)
      << u;
  EXPECT_NE(help_line(u, "-n, --slab-min-size").find("(default: 64)"), std::string::npos) << u;
  EXPECT_NE(help_line(u, "-f, --slab-growth-factor").find("(default: 1.25)"), std::string::npos)
      << u;
  EXPECT_NE(help_line(u, "--driver").find("(default: uring)"), std::string::npos) << u;
  EXPECT_NE(help_line(u, "--shm=").find("(default: none)"), std::string::npos) << u;
  EXPECT_NE(help_line(u, "--shm-discard").find("(default: off)"), std::string::npos) << u;
  EXPECT_NE(help_line(u, "-v, --verbose").find("(default: 0)"), std::string::npos) << u;
  EXPECT_NE(help_line(u, "-h, --help"), "") << u;

  // And every entry of both tables, whatever gets added later.
  int entries = 0;
#define CHECK_DAEMON(kind, member, sh, lo, val, desc)                                      \
  ++entries;                                                                               \
  EXPECT_NE(help_line(u, std::string("--") + lo).find("(default: "), std::string::npos) \
      << lo;                                                                               \
  EXPECT_NE(u.find(desc), std::string::npos) << lo;
  CACHETD_OPTIONS(CHECK_DAEMON)
#undef CHECK_DAEMON
#define CHECK_STORE(type, name, def, flag, desc) \
  ++entries;                                     \
  EXPECT_NE(u.find(desc), std::string::npos) << #name;
  CACHET_STORE_OPTIONS(CHECK_STORE)
#undef CHECK_STORE
#define CHECK_DPDK(type, name, def, flag, desc)                                               \
  ++entries;                                                                                \
  EXPECT_NE(help_line(u, flag).find("(default: "), std::string::npos) << #name;
  CACHET_DPDK_OPTIONS(CHECK_DPDK)
#undef CHECK_DPDK
#define CHECK_TUNABLE(name, def, lo, hi, desc) \
  if (std::string_view(#name) != "verbosity") {  \
    ++entries;                                   \
    EXPECT_NE(u.find(desc), std::string::npos) << #name; \
  }
  CACHET_TUNABLES(CHECK_TUNABLE)
#undef CHECK_TUNABLE
  // The UDP policy's former DPDK-only names are aliases, listed as such.
  EXPECT_NE(help_line(u, "--dpdk-src-rate").find("the same as --udp-src-rate"), std::string::npos);
  EXPECT_NE(help_line(u, "--dpdk-reply-max").find("the same as --udp-reply-max"),
            std::string::npos);
  EXPECT_EQ(static_cast<int>(std::count(u.begin(), u.end(), '\n')), entries + 2 + 4)
      << "one line per option and alias, plus the 3 header lines and -h:\n" << u;
}

TEST(Flags, UdpPolicyOnEveryDriverUnderOldAndNewNames) {
  Parsed p = parse({"--udp-src-rate", "500", "--udp-reply-max", "64k"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.s.net.udp_policy.src_rate, 500u);
  EXPECT_EQ(p.s.net.udp_policy.reply_max, 64u << 10);
  p = parse({"--dpdk-src-rate", "7", "--dpdk-reply-max", "2000"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.s.net.udp_policy.src_rate, 7u);
  EXPECT_EQ(p.s.net.udp_policy.reply_max, 2000u);
  p = parse({"--udp-reply-max", "100"});
  EXPECT_FALSE(p.ok);
  EXPECT_NE(p.error.find("--udp-reply-max"), std::string::npos) << p.error;
}

TEST(Flags, WorkersArePinnedOnlyWhenAsked) {
  Parsed p = parse({});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_FALSE(p.s.net.pin_threads);  // as memcached: the kernel places the threads
  p = parse({"--pin-threads"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_TRUE(p.s.net.pin_threads);
}

}  // namespace
}  // namespace cachet::dataplane
