// The ketama continuum, written from the algorithm libmemcached (hosts.cc, update_continuum)
// and twemproxy (nc_ketama.c) share; tests/unit/control/invalidate/ketama_test.cc checks it
// against libmemcached itself.
#include "control/invalidate/ketama.hh"

#include <md5.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace cachet::invalidate {

namespace {

constexpr uint32_t kPointsPerServer = 160;
constexpr uint32_t kPointsPerHash = 4;
constexpr uint16_t kDefaultPort = 11211;

template <class T>
bool parse_number(std::string_view s, T* v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

uint32_t le32(const uint8_t* d) {
  return static_cast<uint32_t>(d[3]) << 24 | static_cast<uint32_t>(d[2]) << 16 |
         static_cast<uint32_t>(d[1]) << 8 | d[0];
}

}  // namespace

std::string ServerSpec::address() const { return fmt::format("{}:{}", host, port); }

bool parse_host_port(std::string_view text, std::string* host, uint16_t* port,
                     std::string* error) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    *error = fmt::format("'{}' is not host:port", text);
    return false;
  }
  if (!parse_number(text.substr(colon + 1), port) || *port == 0) {
    *error = fmt::format("'{}': '{}' is not a port (1-65535)", text, text.substr(colon + 1));
    return false;
  }
  *host = std::string(text.substr(0, colon));
  return true;
}

bool parse_server_spec(std::string_view text, ServerSpec* out, std::string* error) {
  ServerSpec s;
  std::string_view addr = text;
  if (const size_t sp = text.find(' '); sp != std::string_view::npos) {
    addr = text.substr(0, sp);
    s.name = std::string(text.substr(sp + 1));
    if (s.name.empty() || s.name.find(' ') != std::string::npos) {
      *error = fmt::format("server '{}': expected \"host:port[:weight] [name]\"", text);
      return false;
    }
  }
  // host:port or host:port:weight (IPv4 addresses and names; twemproxy's syntax).
  const size_t first = addr.find(':');
  const size_t last = addr.rfind(':');
  std::string_view host_port = addr;
  if (first != last) {
    if (!parse_number(addr.substr(last + 1), &s.weight) || s.weight == 0) {
      *error = fmt::format("server '{}': weight '{}' is not a positive integer", text,
                           addr.substr(last + 1));
      return false;
    }
    host_port = addr.substr(0, last);
  }
  std::string why;
  if (!parse_host_port(host_port, &s.host, &s.port, &why)) {
    *error = fmt::format("server '{}': {} (expected \"host:port[:weight] [name]\")", text, why);
    return false;
  }
  if (s.name.empty()) s.name = s.port == kDefaultPort ? s.host : s.address();
  *out = std::move(s);
  return true;
}

bool parse_key_hash(std::string_view name, KeyHash* out) {
  if (name == "md5") *out = KeyHash::md5;
  else if (name == "fnv1a_64") *out = KeyHash::fnv1a_64;
  else return false;
  return true;
}

void md5_digest(std::string_view bytes, uint8_t out[16]) {
  MD5_CTX ctx;
  MD5Init(&ctx);
  MD5Update(&ctx, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  MD5Final(out, &ctx);
}

uint32_t key_hash(KeyHash h, std::string_view key) {
  if (h == KeyHash::md5) {
    uint8_t d[16];
    md5_digest(key, d);
    return le32(d);
  }
  // twemproxy's hash_fnv1a_64: the 64-bit constants truncated to 32 bits, and each byte
  // sign-extended as a (signed) char.
  uint32_t hash = static_cast<uint32_t>(UINT64_C(0xcbf29ce484222325));
  for (char c : key) {
    hash ^= static_cast<uint32_t>(static_cast<int32_t>(static_cast<signed char>(c)));
    hash *= static_cast<uint32_t>(UINT64_C(0x100000001b3));
  }
  return hash;
}

KetamaRing::KetamaRing(const std::vector<ServerSpec>& servers) {
  uint64_t total_weight = 0;
  for (const ServerSpec& s : servers) total_weight += s.weight;
  const float live = static_cast<float>(servers.size());
  for (uint32_t index = 0; index < servers.size(); ++index) {
    // Both clients compute this in float; so do we, so that weights round the same way.
    const float pct = static_cast<float>(servers[index].weight) / static_cast<float>(total_weight);
    const auto per_server = static_cast<uint32_t>(
        std::floor(static_cast<float>(pct * kPointsPerServer / 4 * live + 0.0000000001F)) * 4);
    for (uint32_t i = 0; i < per_server / kPointsPerHash; ++i) {
      uint8_t d[16];
      md5_digest(fmt::format("{}-{}", servers[index].name, i), d);
      for (uint32_t x = 0; x < kPointsPerHash; ++x) points_.emplace_back(le32(d + 4 * x), index);
    }
  }
  std::sort(points_.begin(), points_.end());
}

size_t KetamaRing::server_for_hash(uint32_t hash) const {
  auto it = std::lower_bound(points_.begin(), points_.end(), std::make_pair(hash, uint32_t{0}));
  if (it == points_.end()) it = points_.begin();
  return it->second;
}

}  // namespace cachet::invalidate
