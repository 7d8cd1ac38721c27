// Helpers for store tests: open a private store, read a key into a string.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "store/store.hh"

namespace cachet::store::testing {

inline std::unique_ptr<Store> open_store(uint64_t mb = 8, unsigned workers = 1,
                                         std::string shm = "") {
  Options o;
  o.memory_mb = mb;
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

inline std::optional<Got> read(Store& s, Worker& w, std::string_view key) {
  common::ByteBuf out;
  Got g;
  bool hit = s.get(w, key, out, [&](const ItemView& v) {
    out.append(v.value);
    g.flags = v.flags;
    g.cas = v.cas;
    g.exptime = v.exptime;
  });
  if (!hit) return std::nullopt;
  g.value = std::string(out.view());
  return g;
}

}  // namespace cachet::store::testing
