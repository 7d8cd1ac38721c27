// Consistent hashing as libmemcached (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED) and twemproxy
// (distribution: ketama) compute it, so a key's delete reaches the server the clients read it
// from: 160 points per server in proportion to its weight, four per MD5 digest of
// "<name>-<i>", where name is the server's explicit name or "host:port" ("host" alone on port
// 11211); a key goes to the first point at or after its hash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachet::invalidate {

// One server as twemproxy writes it: "host:port[:weight] [name]" (weight defaults to 1).
struct ServerSpec {
  std::string host;
  uint16_t port = 0;
  uint32_t weight = 1;
  std::string name;  // the identity on the ring
  std::string address() const;  // "host:port"
};

// Parses a server spec; false with *error naming what is wrong.
bool parse_server_spec(std::string_view text, ServerSpec* out, std::string* error);

// Parses "host:port" (a router's address).
bool parse_host_port(std::string_view text, std::string* host, uint16_t* port,
                     std::string* error);

// The key hashes clients use with ketama: md5 (libmemcached, twemproxy `hash: md5`) and
// twemproxy's fnv1a_64 (its default, which keeps 32 bits of state).
enum class KeyHash { md5, fnv1a_64 };
bool parse_key_hash(std::string_view name, KeyHash* out);
uint32_t key_hash(KeyHash h, std::string_view key);

// MD5 of bytes (libmd).
void md5_digest(std::string_view bytes, uint8_t out[16]);

class KetamaRing {
 public:
  KetamaRing() = default;
  explicit KetamaRing(const std::vector<ServerSpec>& servers);
  // Index into the servers the ring was built from; the ring must not be empty.
  size_t server_for_hash(uint32_t hash) const;
  size_t server_for(std::string_view key, KeyHash h) const {
    return server_for_hash(key_hash(h, key));
  }
  size_t points() const { return points_.size(); }

 private:
  std::vector<std::pair<uint32_t, uint32_t>> points_;  // (value, server index), sorted
};

}  // namespace cachet::invalidate
