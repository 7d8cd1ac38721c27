// The map stage: a unit's row values become keys through its rules' templates, joined with its
// key messages' keys, checked, made unique, and routed to a server of every pool. Pure and
// thread safe (each call owns its unit), so the flow graph runs it in parallel.
#pragma once

#include <mutex>
#include <vector>

#include "control/invalidate/decoder.hh"
#include "control/invalidate/ketama.hh"
#include "control/invalidate/rules.hh"
#include "control/invalidate/stats.hh"
#include "control/invalidate/unit.hh"

namespace cachet::invalidate {

// How one pool picks a server for a key: a ketama ring, or its one router.
struct PoolRoute {
  bool router = false;
  bool single = false;  // one server: no hashing needed
  KeyHash hash = KeyHash::md5;
  KetamaRing ring;
  uint32_t server_for(std::string_view key) const {
    return router || single ? 0 : static_cast<uint32_t>(ring.server_for(key, hash));
  }
};

class Mapper {
 public:
  Mapper(std::shared_ptr<const RuleSet> rules, std::vector<PoolRoute> routes, Stats* stats,
         std::vector<RuleStats>* rule_stats);
  // Fills unit.keys and unit.targets and drops the row values.
  void map(Unit& unit);

 private:
  std::shared_ptr<const RuleSet> rules_;
  std::vector<PoolRoute> routes_;
  Stats* stats_;
  std::vector<RuleStats>* rule_stats_;
  std::mutex log_mu_;
  LogLimiter limiter_;
};

}  // namespace cachet::invalidate
