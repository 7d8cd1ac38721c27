// Ketama as the clients compute it: server specs in twemproxy's syntax, and the server of
// 20,000 keys compared with libmemcached's own answer (KETAMA_WEIGHTED, MD5), for equal and
// unequal weights and with servers on and off the default port.
#include "control/invalidate/ketama.hh"

#include <gtest/gtest.h>
#include <libmemcached/memcached.h>

#include <string>
#include <vector>

namespace cachet::invalidate {
namespace {

TEST(ServerSpec, TwemproxySyntax) {
  ServerSpec s;
  std::string err;
  ASSERT_TRUE(parse_server_spec("10.0.0.1:11211:3 alpha", &s, &err)) << err;
  EXPECT_EQ(s.host, "10.0.0.1");
  EXPECT_EQ(s.port, 11211);
  EXPECT_EQ(s.weight, 3u);
  EXPECT_EQ(s.name, "alpha");
  ASSERT_TRUE(parse_server_spec("10.0.0.1:11211", &s, &err)) << err;
  EXPECT_EQ(s.weight, 1u);
  EXPECT_EQ(s.name, "10.0.0.1");  // the default port is left out, as both clients do
  ASSERT_TRUE(parse_server_spec("cache-1:22122:1", &s, &err)) << err;
  EXPECT_EQ(s.name, "cache-1:22122");
  EXPECT_EQ(s.address(), "cache-1:22122");
  for (const char* bad : {"10.0.0.1", "10.0.0.1:x", "10.0.0.1:0", "10.0.0.1:70000",
                          "10.0.0.1:11211:0", "10.0.0.1:11211:w", ":11211", "h:1 a b",
                          "h:1 "}) {
    EXPECT_FALSE(parse_server_spec(bad, &s, &err)) << bad;
    EXPECT_NE(err.find(bad), std::string::npos) << err;
  }
}

TEST(KeyHash, Names) {
  KeyHash h;
  EXPECT_TRUE(parse_key_hash("md5", &h));
  EXPECT_TRUE(parse_key_hash("fnv1a_64", &h));
  EXPECT_EQ(h, KeyHash::fnv1a_64);
  EXPECT_FALSE(parse_key_hash("crc32", &h));
  // MD5("") = d41d8cd98f00b204e9800998ecf8427e: the first four bytes, little-endian.
  EXPECT_EQ(key_hash(KeyHash::md5, ""), 0xd98c1dd4u);
}

void compare_with_libmemcached(const std::vector<std::string>& specs) {
  std::vector<ServerSpec> servers;
  memcached_st* mc = memcached_create(nullptr);
  ASSERT_EQ(memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1), MEMCACHED_SUCCESS);
  for (const std::string& text : specs) {
    ServerSpec s;
    std::string err;
    ASSERT_TRUE(parse_server_spec(text, &s, &err)) << err;
    ASSERT_EQ(memcached_server_add_with_weight(mc, s.host.c_str(), s.port, s.weight),
              MEMCACHED_SUCCESS);
    servers.push_back(s);
  }
  KetamaRing ring(servers);
  int differ = 0;
  std::vector<int> per_server(servers.size());
  for (int i = 0; i < 20000; ++i) {
    const std::string key = "user:" + std::to_string(i) + (i % 3 ? ":v2" : "");
    const size_t ours = ring.server_for(key, KeyHash::md5);
    const uint32_t theirs = memcached_generate_hash(mc, key.data(), key.size());
    differ += ours != theirs;
    ++per_server[ours];
  }
  memcached_free(mc);
  EXPECT_EQ(differ, 0);
  for (size_t s = 0; s < servers.size(); ++s) EXPECT_GT(per_server[s], 0) << specs[s];
}

TEST(Ketama, SameServerAsLibmemcached) {
  compare_with_libmemcached({"127.0.0.1:11211", "127.0.0.2:11211", "127.0.0.3:11211"});
  compare_with_libmemcached({"127.0.0.1:21001", "127.0.0.1:21002"});
  compare_with_libmemcached({"10.1.0.1:11211:1", "10.1.0.2:11211:2", "10.1.0.3:11311:5",
                             "10.1.0.4:11211:1"});
}

TEST(Ketama, PointsFollowWeights) {
  std::vector<ServerSpec> servers(2);
  std::string err;
  ASSERT_TRUE(parse_server_spec("10.0.0.1:11211:1", &servers[0], &err));
  ASSERT_TRUE(parse_server_spec("10.0.0.2:11211:3", &servers[1], &err));
  EXPECT_EQ(KetamaRing(servers).points(), 320u);  // 80 + 240: 160 per server on average
}

}  // namespace
}  // namespace cachet::invalidate
