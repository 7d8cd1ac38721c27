// Test helper: pgoutput messages and walsender frames as PostgreSQL writes them (big-endian),
// for the parser and decoder tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cachet::invalidate::test {

class Bytes {
 public:
  explicit Bytes(char type) { s_.push_back(type); }
  Bytes& u8(uint8_t v) { s_.push_back(static_cast<char>(v)); return *this; }
  Bytes& u16(uint16_t v) { return be(v, 2); }
  Bytes& u32(uint32_t v) { return be(v, 4); }
  Bytes& u64(uint64_t v) { return be(v, 8); }
  Bytes& str(const std::string& v) { s_ += v; s_.push_back('\0'); return *this; }
  Bytes& raw(const std::string& v) { s_ += v; return *this; }
  // TupleData: a value per column; nullopt = NULL, "\x01u" = unchanged TOAST.
  Bytes& tuple(const std::vector<std::optional<std::string>>& cols) {
    u16(static_cast<uint16_t>(cols.size()));
    for (const auto& c : cols) {
      if (!c) u8('n');
      else if (*c == "\x01u") u8('u');
      else u8('t').u32(static_cast<uint32_t>(c->size())).raw(*c);
    }
    return *this;
  }
  std::string take() const { return s_; }

 private:
  Bytes& be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) s_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  std::string s_;
};

inline std::string begin_msg(uint64_t lsn, int64_t ts = 0, uint32_t xid = 700) {
  return Bytes('B').u64(lsn).u64(static_cast<uint64_t>(ts)).u32(xid).take();
}
inline std::string commit_msg(uint64_t lsn, uint64_t end_lsn, int64_t ts = 0) {
  return Bytes('C').u8(0).u64(lsn).u64(end_lsn).u64(static_cast<uint64_t>(ts)).take();
}
// Relation: columns (name, is key).
inline std::string relation_msg(uint32_t id, const std::string& schema, const std::string& name,
                                char ident,
                                const std::vector<std::pair<std::string, bool>>& cols) {
  Bytes b('R');
  b.u32(id).str(schema).str(name).u8(static_cast<uint8_t>(ident)).u16(static_cast<uint16_t>(cols.size()));
  for (const auto& [n, key] : cols) b.u8(key ? 1 : 0).str(n).u32(25).u32(0xffffffff);
  return b.take();
}
inline std::string insert_msg(uint32_t rel, const std::vector<std::optional<std::string>>& row) {
  return Bytes('I').u32(rel).u8('N').tuple(row).take();
}
// old_kind 0: no old tuple.
inline std::string update_msg(uint32_t rel, char old_kind,
                              const std::vector<std::optional<std::string>>& old_row,
                              const std::vector<std::optional<std::string>>& new_row) {
  Bytes b('U');
  b.u32(rel);
  if (old_kind) b.u8(static_cast<uint8_t>(old_kind)).tuple(old_row);
  return b.u8('N').tuple(new_row).take();
}
inline std::string delete_msg(uint32_t rel, char old_kind,
                              const std::vector<std::optional<std::string>>& old_row) {
  return Bytes('D').u32(rel).u8(static_cast<uint8_t>(old_kind)).tuple(old_row).take();
}
inline std::string message_msg(bool transactional, const std::string& prefix,
                               const std::string& content, uint64_t lsn = 0x100) {
  return Bytes('M').u8(transactional ? 1 : 0).u64(lsn).str(prefix)
      .u32(static_cast<uint32_t>(content.size())).raw(content).take();
}
inline std::string truncate_msg(const std::vector<uint32_t>& rels) {
  Bytes b('T');
  b.u32(static_cast<uint32_t>(rels.size())).u8(0);
  for (uint32_t r : rels) b.u32(r);
  return b.take();
}

}  // namespace cachet::invalidate::test
