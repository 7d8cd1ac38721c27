// The source: one thread that owns the replication connection. It prepares the catalog,
// starts the slot's stream (pgoutput, proto_version 1, messages on), reads CopyData frames
// into raw batches for the pipeline as long as the in-flight budget allows (back-pressure: it
// stops reading, PostgreSQL keeps the WAL), reports the confirmed position every
// feedback_interval_ms, and reconnects with a growing delay after any failure. A restart
// resumes from the slot: what was not confirmed is streamed and delivered again.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/invalidate/config.hh"
#include "control/invalidate/tracker.hh"

namespace cachet::invalidate {

class Pipeline;

class Source {
 public:
  Source(const Config& config, Pipeline* pipeline, Tracker* tracker, Stats* stats);
  ~Source();
  void start();
  // Stops reading; lets in-flight units settle for at most drain_ms, reports the confirmed
  // position once more and closes the connection. Returns when the thread has ended.
  void stop(int drain_ms);

  struct Status {
    std::string state;  // connecting, streaming, waiting (after an error), stopped
    std::string error;  // the last failure, "" while streaming
    std::vector<std::string> problems, warnings;  // from the catalog checks
    uint64_t reported_lsn = 0;  // the last position sent to PostgreSQL
    int64_t connected_since_ms = 0;
  };
  Status status() const;

 private:
  void run();
  bool stream(std::string* error);
  void set_state(const std::string& state, const std::string& error);
  void write_state_file(uint64_t lsn);

  const Config& config_;
  Pipeline* pipeline_;
  Tracker* tracker_;
  Stats* stats_;
  std::atomic<bool> stop_{false};
  std::atomic<int> drain_ms_{0};
  std::thread thread_;
  mutable std::mutex mu_;
  Status status_;
  std::string state_path_;
  int state_fd_ = -1;
  uint64_t state_written_ = 0;
};

// The last confirmed position a previous run wrote to <spool dir>/state (0 when none).
uint64_t read_state_file(const std::string& spool_dir);

}  // namespace cachet::invalidate
