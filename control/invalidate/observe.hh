// What operators see: the Prometheus metrics (cachet_invalidate_*) and the status the control
// socket returns (which `cachetctl invalidate` prints), both from one snapshot of the daemon.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/invalidate/destination.hh"
#include "control/invalidate/rules.hh"
#include "control/invalidate/source.hh"
#include "control/invalidate/stats.hh"

namespace cachet::invalidate {

struct ServerView {
  std::string state, last_error;  // from the I/O thread
};

struct View {
  const Config* config = nullptr;
  const Stats* stats = nullptr;
  const std::vector<RuleStats>* rule_stats = nullptr;
  const RuleSet* rules = nullptr;
  const std::vector<Pool>* pools = nullptr;
  std::vector<ServerView> servers;  // every server of every pool, in order
  Source::Status source;
  uint64_t inflight = 0;
  int64_t oldest_commit_us = 0;  // Unix us of the oldest unsettled transaction, 0 when none
  int64_t now_unix_us = 0;
  double uptime_s = 0;
  std::string origin, metrics_url;

  uint64_t lag_bytes() const;
  double lag_seconds() const;
};

std::string format_metrics(const View& v);
nlohmann::json status_json(const View& v);

}  // namespace cachet::invalidate
