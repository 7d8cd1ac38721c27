// Command lines of cachet-control (the `--` split) and cachetctl (every subcommand, checked
// values, errors).
#include "control/args.hh"

#include <gtest/gtest.h>

#include <initializer_list>

namespace cachet::control {
namespace {

template <class Args, class Fn>
ParseResult parse(Fn fn, std::initializer_list<const char*> argv, Args* out, std::string* text) {
  std::vector<const char*> v(argv);
  return fn(static_cast<int>(v.size()), v.data(), out, text);
}

ParseResult ctl(std::initializer_list<const char*> argv, CtlArgs* a, std::string* text) {
  return parse(parse_ctl_args, argv, a, text);
}

TEST(ControlArgs, SplitsAtDoubleDash) {
  ControlArgs a;
  std::string text;
  ASSERT_EQ(parse(parse_control_args,
                  {"cachet-control", "--socket", "S", "--", "-p", "11311", "-m", "256", "--", "x"},
                  &a, &text),
            ParseResult::ok)
      << text;
  EXPECT_EQ(a.socket_path, "S");
  EXPECT_EQ(a.overrides, (std::vector<std::string>{"-p", "11311", "-m", "256", "--", "x"}));
  ControlArgs b;
  ASSERT_EQ(parse(parse_control_args, {"cachet-control", "-c", "f.toml", "--check"}, &b, &text),
            ParseResult::ok);
  EXPECT_EQ(b.config_path, "f.toml");
  EXPECT_TRUE(b.check);
  EXPECT_TRUE(b.overrides.empty());
}

TEST(ControlArgs, HelpAndErrors) {
  ControlArgs a;
  std::string text;
  EXPECT_EQ(parse(parse_control_args, {"cachet-control", "--help"}, &a, &text), ParseResult::help);
  EXPECT_NE(text.find("--print-default-config"), std::string::npos) << text;
  ControlArgs b;
  EXPECT_EQ(parse(parse_control_args, {"cachet-control", "-p", "1"}, &b, &text),
            ParseResult::error);
  EXPECT_NE(text.find("-p"), std::string::npos) << text;
  ControlArgs c;
  EXPECT_EQ(parse(parse_control_args, {"cachet-control", "--config"}, &c, &text),
            ParseResult::error);
}

TEST(CtlArgs, EveryCommand) {
  struct Case {
    std::initializer_list<const char*> argv;
    const char* command;
  };
  const Case cases[] = {
      {{"cachetctl", "status"}, "status"},
      {{"cachetctl", "stats"}, "stats"},
      {{"cachetctl", "stats", "slabs"}, "stats"},
      {{"cachetctl", "config", "get"}, "config-get"},
      {{"cachetctl", "config", "set", "k", "v"}, "config-set"},
      {{"cachetctl", "slabs"}, "slabs"},
      {{"cachetctl", "top", "-n", "3"}, "top"},
      {{"cachetctl", "upgrade", "--binary", "/x", "--discard-cache"}, "upgrade"},
      {{"cachetctl", "restart"}, "restart"},
      {{"cachetctl", "stop", "--discard"}, "stop"},
  };
  for (const Case& c : cases) {
    CtlArgs a;
    std::string text;
    ASSERT_EQ(ctl(c.argv, &a, &text), ParseResult::ok) << *c.argv.begin() << text;
    EXPECT_EQ(a.command, c.command);
  }
}

TEST(CtlArgs, Values) {
  CtlArgs a;
  std::string text;
  ASSERT_EQ(ctl({"cachetctl", "--socket", "/s", "--json", "stats", "items"}, &a, &text),
            ParseResult::ok);
  EXPECT_EQ(a.socket, "/s");
  EXPECT_TRUE(a.json);
  EXPECT_EQ(a.group, "items");
  CtlArgs b;
  ASSERT_EQ(ctl({"cachetctl", "config", "set", "supervisor.backoff_max_ms", "-1"}, &b, &text),
            ParseResult::ok)
      << text;  // a negative value reaches the control process's check
  EXPECT_EQ(b.key, "supervisor.backoff_max_ms");
  EXPECT_EQ(b.value, "-1");
  CtlArgs c;
  ASSERT_EQ(ctl({"cachetctl", "top", "--iterations", "5", "--interval", "0.5"}, &c, &text),
            ParseResult::ok);
  EXPECT_EQ(c.iterations, 5);
  EXPECT_DOUBLE_EQ(c.interval_s, 0.5);
  CtlArgs d;
  ASSERT_EQ(ctl({"cachetctl", "upgrade", "--binary", "/new", "--discard-cache"}, &d, &text),
            ParseResult::ok);
  EXPECT_EQ(d.binary, "/new");
  EXPECT_TRUE(d.discard_cache);
  CtlArgs e;
  ASSERT_EQ(ctl({"cachetctl", "status", "--socket", "/late"}, &e, &text), ParseResult::ok);
  EXPECT_EQ(e.socket, "/late") << "global options also after the command";
}

TEST(CtlArgs, Errors) {
  const std::initializer_list<const char*> bad[] = {
      {"cachetctl"},
      {"cachetctl", "frobnicate"},
      {"cachetctl", "stats", "bogus"},
      {"cachetctl", "config"},
      {"cachetctl", "config", "set", "k"},
      {"cachetctl", "top", "--iterations", "-1"},
      {"cachetctl", "top", "--interval", "0"},
      {"cachetctl", "upgrade", "--bogus"},
      {"cachetctl", "stop", "now"},
  };
  for (const auto& argv : bad) {
    CtlArgs a;
    std::string text;
    EXPECT_EQ(ctl(argv, &a, &text), ParseResult::error) << *(argv.begin() + (argv.size() - 1));
    EXPECT_FALSE(text.empty());
  }
}

}  // namespace
}  // namespace cachet::control
