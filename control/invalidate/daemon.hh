// cachet-invalidate's process: it builds the pools, the pipeline, the source, the I/O, spool
// and auditor threads, then serves the control socket (status, JSON lines as cachet-control's
// API) and the Prometheus endpoint from one poll loop until SIGINT or SIGTERM, and stops in
// order (the source drains for up to 2 s and reports its last confirmed position).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/invalidate/auditor.hh"
#include "control/invalidate/config.hh"
#include "control/invalidate/destination.hh"
#include "control/invalidate/observe.hh"
#include "control/invalidate/pipeline.hh"
#include "control/invalidate/sender.hh"
#include "control/invalidate/source.hh"
#include "control/invalidate/spool_writer.hh"
#include "control/invalidate/tracker.hh"

namespace cachet::invalidate {

class Daemon {
 public:
  Daemon(Config config, std::string origin);
  ~Daemon();
  // Opens the spools and sockets and starts every thread; false with *error.
  bool start(std::string* error);
  // Serves until SIGINT or SIGTERM (blocked by the caller before start); returns 0.
  int run();

 private:
  View view() const;
  void serve_control(int fd);
  void serve_metrics(int fd);
  void shutdown();

  Config config_;
  std::string origin_;
  std::string socket_path_;
  int64_t started_ms_;
  Stats stats_;
  std::vector<RuleStats> rule_stats_;
  std::shared_ptr<const RuleSet> rules_;
  std::vector<Pool> pools_;
  std::unique_ptr<Tracker> tracker_;
  std::unique_ptr<SpoolWriter> writer_;
  std::unique_ptr<Auditor> auditor_;
  std::unique_ptr<Sender> sender_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<Source> source_;
  int control_fd_ = -1, metrics_fd_ = -1, signal_fd_ = -1;
  bool stopped_ = false;
};

}  // namespace cachet::invalidate
