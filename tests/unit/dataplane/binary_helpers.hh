// Test helpers for the binary protocol: build request packets (with any header field forced),
// build expected response packets, and split a response stream into packets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cachet::dataplane::testing {

inline std::string be16(uint16_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v)};
}
inline std::string be32(uint32_t v) {
  return be16(static_cast<uint16_t>(v >> 16)) + be16(static_cast<uint16_t>(v));
}
inline std::string be64(uint64_t v) {
  return be32(static_cast<uint32_t>(v >> 32)) + be32(static_cast<uint32_t>(v));
}

// A request packet. Unset lengths are the real ones; set ones are written as given.
struct Req {
  uint8_t op = 0;
  std::string key;
  std::string extras;
  std::string value;
  uint64_t cas = 0;
  uint32_t opaque = 0;
  uint8_t magic = 0x80;
  std::optional<uint16_t> keylen;
  std::optional<uint8_t> extlen;
  std::optional<uint32_t> bodylen;

  std::string bytes() const {
    std::string s;
    s += static_cast<char>(magic);
    s += static_cast<char>(op);
    s += be16(keylen.value_or(static_cast<uint16_t>(key.size())));
    s += static_cast<char>(extlen.value_or(static_cast<uint8_t>(extras.size())));
    s += std::string(3, '\0');  // datatype, vbucket
    s += be32(bodylen.value_or(static_cast<uint32_t>(extras.size() + key.size() + value.size())));
    s += be32(opaque);
    s += be64(cas);
    return s + extras + key + value;
  }
};

inline std::string req(uint8_t op, std::string key = {}, std::string extras = {},
                       std::string value = {}, uint64_t cas = 0, uint32_t opaque = 0) {
  return Req{op, std::move(key), std::move(extras), std::move(value), cas, opaque}.bytes();
}
// SET-family extras: flags, expiration.
inline std::string set_extras(uint32_t flags, uint32_t exptime) {
  return be32(flags) + be32(exptime);
}
// INCREMENT/DECREMENT extras: delta, initial, expiration.
inline std::string delta_extras(uint64_t delta, uint64_t initial, uint32_t exptime) {
  return be64(delta) + be64(initial) + be32(exptime);
}

// An expected response packet.
inline std::string res(uint8_t op, uint16_t status, std::string_view extras = {},
                       std::string_view key = {}, std::string_view value = {}, uint32_t opaque = 0,
                       uint64_t cas = 0) {
  std::string s;
  s += static_cast<char>(0x81);
  s += static_cast<char>(op);
  s += be16(static_cast<uint16_t>(key.size()));
  s += static_cast<char>(extras.size());
  s += '\0';
  s += be16(status);
  s += be32(static_cast<uint32_t>(extras.size() + key.size() + value.size()));
  s += be32(opaque);
  s += be64(cas);
  s.append(extras);
  s.append(key);
  s.append(value);
  return s;
}

// An error response: the status and memcached's message, cas 0.
inline std::string err(uint8_t op, uint16_t status, std::string_view msg, uint32_t opaque = 0) {
  return res(op, status, {}, {}, msg, opaque, 0);
}

struct Packet {
  uint8_t magic = 0;
  uint8_t op = 0;
  uint16_t status = 0;
  std::string extras, key, value;
  uint32_t opaque = 0;
  uint64_t cas = 0;
};

inline uint64_t read_be(std::string_view s, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = v << 8 | static_cast<uint8_t>(s[at + i]);
  return v;
}

// Splits a response stream into packets; a trailing partial packet is dropped.
inline std::vector<Packet> packets(std::string_view s) {
  std::vector<Packet> out;
  while (s.size() >= 24) {
    size_t keylen = read_be(s, 2, 2), extlen = read_be(s, 4, 1), bodylen = read_be(s, 8, 4);
    if (s.size() < 24 + bodylen) break;
    Packet p;
    p.magic = static_cast<uint8_t>(s[0]);
    p.op = static_cast<uint8_t>(s[1]);
    p.status = static_cast<uint16_t>(read_be(s, 6, 2));
    p.opaque = static_cast<uint32_t>(read_be(s, 12, 4));
    p.cas = read_be(s, 16, 8);
    p.extras = s.substr(24, extlen);
    p.key = s.substr(24 + extlen, keylen);
    p.value = s.substr(24 + extlen + keylen, bodylen - extlen - keylen);
    out.push_back(std::move(p));
    s.remove_prefix(24 + bodylen);
  }
  return out;
}

}  // namespace cachet::dataplane::testing
