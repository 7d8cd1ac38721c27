// cachet-load's output: the human summary on stdout and the JSON result file.
#pragma once

#include <string>

#include "perf/loadgen/options.hh"
#include "perf/loadgen/worker.hh"

namespace cachet::perf {

struct RunSummary {
  Stats total;            // all workers merged
  double preload_s = 0;   // connect-to-preloaded time (0 without --preload)
  double elapsed_s = 0;   // measured window actually used
  double mean_value = 0;  // mean value size of the key space, bytes
  bool ran = false;       // the measured phase happened (no setup or preload failure)
  std::string link_json;  // DPDK: the "dpdk" object (port, MACs, ARP), empty otherwise
  std::string link_desc;  // DPDK: one line for the human summary
  double key_ops_per_s() const { return elapsed_s > 0 ? total.key_ops / elapsed_s : 0; }
  double requests_per_s() const { return elapsed_s > 0 ? total.requests / elapsed_s : 0; }
  double rx_packets_per_s() const { return elapsed_s > 0 ? total.rx_packets / elapsed_s : 0; }
  double tx_packets_per_s() const { return elapsed_s > 0 ? total.tx_packets / elapsed_s : 0; }
  double hit_ratio() const {
    return total.get_keys ? static_cast<double>(total.hits) / total.get_keys : 0;
  }
  // Share of the workers' threads the measured window kept busy (1.0: saturated).
  double cpu_util(unsigned threads) const {
    return elapsed_s > 0 ? total.cpu_ns / 1e9 / (elapsed_s * threads) : 0;
  }
  // Share of the window the workers spent in polls that delivered nothing (waiting).
  double idle_share(unsigned threads) const {
    return elapsed_s > 0 ? total.idle_ns / 1e9 / (elapsed_s * threads) : 0;
  }
  bool ok() const {
    return ran && total.requests > 0 && total.errors() == 0 && !total.preload_incomplete;
  }
};

// --mode ceiling (DPDK): frames echoed by a forwarder, counted inside the measured window.
struct CeilingSummary {
  uint64_t sent = 0, received = 0;  // frames sent in the window / of those, came back in it
  uint64_t lost = 0;                // sent in the window, not back within --udp-timeout
                                    // (the rest of sent - received was in flight at the end)
  uint64_t bad = 0;                 // frames back that are not ours or are altered
  uint64_t polls = 0, empty_polls = 0, cpu_ns = 0;
  uint64_t idle_ns = 0;  // in loop turns whose RX burst was empty
  double elapsed_s = 0;
  Histogram lat;  // round-trip nanoseconds
  std::string first_error, link_json, link_desc;
  double round_trips_per_s() const { return elapsed_s > 0 ? received / elapsed_s : 0; }
  bool ok() const { return received > 0 && bad == 0; }
};

void print_summary(const Options& opt, const RunSummary& r);
void print_ceiling(const Options& opt, const CeilingSummary& c);
bool write_ceiling_json(const Options& opt, const CeilingSummary& c, std::string* error);
// Writes the result to opt.json; false with *error naming the file when it cannot.
bool write_json(const Options& opt, const RunSummary& r, std::string* error);

}  // namespace cachet::perf
