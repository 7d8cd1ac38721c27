// cachet-invalidate's configuration: the embedded default reads back to the defaults and
// names every option; each kind of mistake is refused with the key and the line.
#include "control/invalidate/config.hh"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "control/invalidate/key_template.hh"

namespace cachet::invalidate {
namespace {

bool same(const Config& a, const Config& b) {
  for (const Option& o : options()) {
    const bool eq = std::visit([&](auto m) { return a.*m == b.*m; }, o.member);
    if (!eq) {
      ADD_FAILURE() << o.name() << " differs";
      return false;
    }
  }
  if (a.pools.size() != b.pools.size() || a.rules.size() != b.rules.size()) return false;
  for (size_t i = 0; i < a.pools.size(); ++i)
    if (a.pools[i].name != b.pools[i].name || a.pools[i].servers != b.pools[i].servers ||
        a.pools[i].router != b.pools[i].router || a.pools[i].hash != b.pools[i].hash ||
        a.pools[i].holdoff_s != b.pools[i].holdoff_s)
      return false;
  return true;
}

TEST(InvalidateConfig, DefaultTextReadsBackToTheDefaults) {
  const std::string text = default_config_text();
  Config c;
  c.batch_max_keys = 7;  // parse over something else, to see the defaults come back
  std::string err;
  Config parsed;
  ASSERT_TRUE(parse_config(text, "default", &parsed, &err)) << err;
  EXPECT_TRUE(same(parsed, Config{}));
  for (const Option& o : options())
    EXPECT_NE(text.find(std::string(o.key) + " = "), std::string::npos) << o.name();
  EXPECT_NE(text.find("[[pool]]"), std::string::npos);
  EXPECT_NE(text.find("# [[rule]]"), std::string::npos);
}

TEST(InvalidateConfig, PoolsAndRules) {
  Config c;
  std::string err;
  ASSERT_TRUE(parse_config(R"(
[batch]
max_keys = 64
[auditor]
sample_rate = 0.5
[[pool]]
name = "west"
servers = ["10.0.0.1:11211:2 a", "10.0.0.2:11211"]
holdoff_s = 2
[[pool]]
name = "east"
router = "10.1.0.1:22122"
[[rule]]
table = "app.users"
keys = ["user:{id}", "profile:{id}:v2"]
[[rule]]
table = "orders"
keys = ["order:{{x}}:{id}"]
)", "t.toml", &c, &err)) << err;
  EXPECT_EQ(c.batch_max_keys, 64);
  EXPECT_DOUBLE_EQ(c.auditor_sample_rate, 0.5);
  ASSERT_EQ(c.pools.size(), 2u);  // the file's pools replace the default one
  EXPECT_EQ(c.pools[0].servers.size(), 2u);
  EXPECT_EQ(c.pools[0].holdoff_s, 2);
  EXPECT_EQ(c.pools[1].router, "10.1.0.1:22122");
  ASSERT_EQ(c.rules.size(), 2u);
  EXPECT_EQ(c.rules[0].schema, "app");
  EXPECT_EQ(c.rules[0].table, "users");
  EXPECT_EQ(c.rules[1].schema, "public");
  EXPECT_EQ(c.rules[1].line, 16);  // the text starts with a newline
}

TEST(InvalidateConfig, MistakesNameTheKeyAndLine) {
  struct Case {
    const char* toml;
    const char* expect;
  } cases[] = {
      {"[source]\nslot = 3\n", "t.toml:2: source.slot: expected a string"},
      {"[source]\nnope = 1\n", "unknown key 'source.nope'"},
      {"[nosuch]\na = 1\n", "unknown section 'nosuch'"},
      {"[batch]\nmax_keys = 0\n", "batch.max_keys: 0 is out of range (1-4096)"},
      {"[batch]\nwindow = 1.5\n", "batch.window: expected an integer"},
      {"[control]\nlog_level = \"loud\"\n", "'loud' is not error, warn, info or debug"},
      {"[source]\nslot = \"My-Slot\"\n", "'My-Slot' is not a slot name"},
      {"[[pool]]\nname = \"p\"\nservers = [\"10.0.0.1\"]\n",
       "t.toml:1: pool 1: server '10.0.0.1'"},
      {"[[pool]]\nname = \"p\"\nservers = [\"a:1\"]\nrouter = \"b:2\"\n",
       "either servers or router"},
      {"[[pool]]\nname = \"p\"\n", "either servers or router"},
      {"[[pool]]\nname = \"p\"\nservers = [\"a:1\"]\nhash = \"crc\"\n", "hash 'crc'"},
      {"[[pool]]\nname = \"p\"\nservers = [\"a:1\", \"a:1\"]\n", "listed twice"},
      {"[[pool]]\nname = \"p\"\nservers = [\"a:1\"]\nweight = 1\n",
       "pool 1.weight: unknown key"},
      {"[[pool]]\nname = \"p\"\nservers = [\"a:1\"]\n[[pool]]\nname = \"p\"\nrouter = \"b:2\"\n",
       "pool name 'p' is used twice"},
      {"[[rule]]\ntable = \"users\"\nkeys = [\"user:{id\"]\n", "is not closed"},
      {"[[rule]]\ntable = \"users\"\nkeys = [\"user:{}\"]\n", "empty field"},
      {"[[rule]]\ntable = \"users\"\nkeys = [\"user {id}\"]\n", "a space or a control"},
      {"[[rule]]\ntable = \"users\"\nkeys = []\n", "non-empty keys"},
      {"[[rule]]\ntable = \"a.b.c\"\nkeys = [\"k\"]\n", "'a.b.c' is not"},
      {"[[rule]]\ntable = \"t\"\nkeys = [\"a:{id}\"]\n[[rule]]\ntable = \"public.t\"\n"
       "keys = [\"b:{id}\"]\n",
       "two rules for table public.t"},
      {"[[rule]]\ntable = \"t\"\nkey = [\"a\"]\n", "rule 1.key: unknown key"},
      {"pool = 3\n", "must be written as [[pool]]"},
      {"[source\n", "t.toml:1"},
  };
  for (const Case& k : cases) {
    Config c;
    const Config before = c;
    std::string err;
    EXPECT_FALSE(parse_config(k.toml, "t.toml", &c, &err)) << k.toml;
    EXPECT_NE(err.find(k.expect), std::string::npos) << "got: " << err << "\nwant: " << k.expect;
    EXPECT_TRUE(same(c, before)) << "changed by a refused config: " << k.toml;
  }
}

TEST(InvalidateConfig, DocumentedWithDefaults) {
  const char* root = std::getenv("CACHET_SOURCE_ROOT");
  if (!root) GTEST_SKIP() << "CACHET_SOURCE_ROOT not set (meson test sets it)";
  std::ifstream f(std::string(root) + "/docs/INVALIDATE.md");
  ASSERT_TRUE(f) << "docs/INVALIDATE.md";
  std::map<std::string, std::string> rows;
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("| `", 0) == 0) rows[line.substr(3, line.find('`', 3) - 3)] = line;
  const Config d;
  for (const Option& o : options()) {
    auto it = rows.find(o.name());
    ASSERT_NE(it, rows.end()) << o.name() << " is not in docs/INVALIDATE.md's table";
    const std::string def = std::visit(
        [&](auto m) -> std::string {
          using T = std::remove_cvref_t<decltype(d.*m)>;
          if constexpr (std::is_same_v<T, std::string>) return "\"" + d.*m + "\"";
          else if constexpr (std::is_same_v<T, bool>) return d.*m ? "true" : "false";
          else return fmt::format("{}", d.*m);
        },
        o.member);
    EXPECT_NE(it->second.find("| `" + def + "` |"), std::string::npos)
        << o.name() << ": default " << def << " not in: " << it->second;
  }
}

TEST(KeyTemplate, ParseAndExpand) {
  KeyTemplate t;
  std::string err;
  ASSERT_TRUE(KeyTemplate::parse("u:{id}:{{{name}}}:{id}", &t, &err)) << err;
  EXPECT_EQ(t.fields(), (std::vector<std::string>{"id", "name"}));
  std::string_view id = "7", name = "ann";
  std::vector<const std::string_view*> v = {&id, &name};
  EXPECT_EQ(t.expand(v), "u:7:{ann}:7");
  v[1] = nullptr;
  EXPECT_FALSE(t.expand(v).has_value());
  ASSERT_TRUE(KeyTemplate::parse("constant", &t, &err));
  EXPECT_EQ(t.expand({}), "constant");
  EXPECT_FALSE(KeyTemplate::parse("a}b", &t, &err));
  EXPECT_FALSE(KeyTemplate::parse("a{b{c}}", &t, &err));
}

TEST(KeyProblem, MemcachedRules) {
  EXPECT_FALSE(key_problem("user:1").has_value());
  EXPECT_FALSE(key_problem(std::string(250, 'k')).has_value());
  EXPECT_TRUE(key_problem(std::string(251, 'k')).has_value());
  EXPECT_TRUE(key_problem("").has_value());
  EXPECT_TRUE(key_problem("a b").has_value());
  EXPECT_TRUE(key_problem("a\x01").has_value());
  EXPECT_TRUE(key_problem("a\x7f").has_value());
  EXPECT_FALSE(key_problem("caf\xc3\xa9").has_value());  // UTF-8 is fine
}

}  // namespace
}  // namespace cachet::invalidate
