// The auditor, as the paper monitors invalidations: one key of a sampled fraction of delete
// packets is read back from its server auditor.delay_ms after the packet was sent. A value
// whose CAS is below the server's CAS watermark taken before the packet was sent was stored
// before the delete and survived it: a miss (counted and logged). A value stored after the
// delete (a refill) has a higher CAS and is not a miss. Watermarks come from a probe key the
// auditor stores on each server every 250 ms. Routers are not audited (a router hides which
// server holds a key, so CAS values cannot be compared). Runs on its own thread with its own
// connections; the I/O thread only hands it samples.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "control/invalidate/destination.hh"
#include "control/invalidate/stats.hh"

namespace cachet::invalidate {

class Auditor {
 public:
  Auditor(double sample_rate, int64_t delay_ms, std::vector<Pool>* pools, Stats* stats);
  ~Auditor() { stop(); }
  void start();
  void stop();
  // I/O thread: maybe samples one key of a packet just sent to s.
  void maybe_sample(Server* s, const Batch& batch);

  // The probe key; its CAS is the watermark.
  static constexpr const char* kProbeKey = "cachet-invalidate:audit";

 private:
  struct Sample {
    Server* server;
    std::string key;
    int64_t sent_us;
  };
  struct Watch {
    int fd = -1;
    std::deque<std::pair<int64_t, uint64_t>> marks;  // (taken at, CAS watermark), oldest first
    int64_t next_mark_us = 0;
  };
  void run();
  void refresh_mark(Server* s, Watch& w, int64_t now);
  void check(const Sample& sample, Watch& w, int64_t now);
  bool call(Server* s, Watch& w, const std::string& request, std::string_view term,
            std::string* reply);

  const double rate_;
  const int64_t delay_us_;
  std::vector<Pool>* pools_;
  Stats* stats_;
  std::mt19937_64 rng_{0x5eed};  // I/O thread only
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Sample> samples_;
  bool stop_ = false;
  std::thread thread_;
  std::map<Server*, Watch> watches_;  // auditor thread only
};

}  // namespace cachet::invalidate
