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
  double key_ops_per_s() const { return elapsed_s > 0 ? total.key_ops / elapsed_s : 0; }
  double requests_per_s() const { return elapsed_s > 0 ? total.requests / elapsed_s : 0; }
  double hit_ratio() const {
    return total.get_keys ? static_cast<double>(total.hits) / total.get_keys : 0;
  }
  // Share of the workers' threads the measured window kept busy (1.0: saturated).
  double cpu_util(unsigned threads) const {
    return elapsed_s > 0 ? total.cpu_ns / 1e9 / (elapsed_s * threads) : 0;
  }
  bool ok() const {
    return ran && total.requests > 0 && total.errors() == 0 && !total.preload_incomplete;
  }
};

void print_summary(const Options& opt, const RunSummary& r);
// Writes the result to opt.json; false with *error naming the file when it cannot.
bool write_json(const Options& opt, const RunSummary& r, std::string* error);

}  // namespace cachet::perf
