// Helpers for store tests: open a private store, write, remove and read a key with the
// store's own primitives (no protocol rule).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "store/store.hh"

namespace cachet::store::testing {

inline std::unique_ptr<Store> open_store(uint64_t mb = 8, unsigned workers = 1,
                                         std::string shm = "",
                                         double growth_factor = Options{}.growth_factor) {
  Options o;
  o.memory_mb = mb;
  o.growth_factor = growth_factor;
  o.workers = workers;
  o.shm = std::move(shm);
  std::string err;
  auto s = Store::open(o, &err);
  EXPECT_TRUE(s) << err;
  return s;
}

struct Got {
  std::string value;
  uint32_t flags = 0;
  uint64_t cas = 0;
  uint32_t exptime = 0;
};

// Links a new item for key (a plain write, as a set does).
inline UpdateResult put(Store& s, Worker& w, std::string_view key, std::string_view value,
                        uint32_t flags = 0, uint32_t exptime = 0, uint64_t* cas = nullptr) {
  auto decide = [&](const ItemView*, Change& ch) {
    ch.op = Change::Op::write;
    ch.value_len = value.size();
    ch.flags = flags;
    ch.exptime = exptime;
    ch.marks = 0;
    ch.hidden = false;
    ch.has_ext = false;
    ch.counts = kCountSet;
  };
  return s.update(w, key, Store::hash(key), {value, true}, decide, cas);
}

// Unlinks key's item; true when there was a live one.
inline bool del(Store& s, Worker& w, std::string_view key) {
  bool found = false;
  s.update(w, key, Store::hash(key), {}, [&](const ItemView* cur, Change& ch) {
    found = cur != nullptr;
    ch.op = Change::Op::remove;
  });
  return found;
}

inline std::optional<Got> read(Store& s, Worker& w, std::string_view key) {
  common::ByteBuf out;
  Got g;
  bool hit = s.get(w, key, Store::hash(key), out, [&](const ItemView& v) {
    out.append(v.value);
    g.flags = v.flags;
    g.cas = v.cas;
    g.exptime = v.exptime;
    return true;
  });
  if (!hit) return std::nullopt;
  g.value = std::string(out.view());
  return g;
}

}  // namespace cachet::store::testing
