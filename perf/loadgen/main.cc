// cachet-load: the project's memcache load generator. Splits connections, keys and the request
// bound over worker threads, runs them, merges their counters and reports.
#include <fmt/core.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "perf/loadgen/options.hh"
#include "perf/loadgen/report.hh"
#include "perf/loadgen/worker.hh"
#include "perf/loadgen/workload.hh"
#ifdef CACHET_LOAD_DPDK
#include "perf/loadgen/dpdk_transport.hh"
#else
namespace cachet::perf {
class DpdkContext;
}
#endif

namespace cachet::perf {
namespace {

double mean_value_size(const Workload& w) {
  uint32_t n = std::min<uint32_t>(w.keys(), 1u << 20);
  double sum = 0;
  for (uint32_t i = 0; i < n; ++i) sum += w.value_size(i);
  return n ? sum / n : 0;
}

// One load run on kernel sockets, or on the DPDK context's lcores when dpdk is set.
int run_load(Options& opt, [[maybe_unused]] DpdkContext* dpdk) {
#ifdef CACHET_LOAD_DPDK
  if (dpdk && opt.conns < opt.threads) {
    fmt::print(stderr, "cachet-load: --conns {} is fewer than the {} EAL lcores\n", opt.conns,
               opt.threads);
    return 1;
  }
#endif
  Workload wl(opt);
  Shared sh(opt, wl, opt.threads);
#ifdef CACHET_LOAD_DPDK
  if (dpdk) sh.make_transport = [&](unsigned i) { return dpdk->transport(i); };
#endif
  std::vector<std::unique_ptr<Worker>> workers;
  const unsigned T = opt.threads;
  for (unsigned t = 0; t < T; ++t) {
    unsigned conns = opt.conns / T + (t < opt.conns % T ? 1 : 0);
    auto lo = static_cast<uint32_t>(static_cast<uint64_t>(opt.keys) * t / T);
    auto hi = static_cast<uint32_t>(static_cast<uint64_t>(opt.keys) * (t + 1) / T);
    uint64_t quota =
        opt.max_requests ? opt.max_requests / T + (t < opt.max_requests % T ? 1 : 0) : 0;
    if (opt.max_requests && quota == 0) quota = 1;
    workers.push_back(std::make_unique<Worker>(t, sh, conns, lo, hi, quota));
  }
#ifdef CACHET_LOAD_DPDK
  if (dpdk) {
    dpdk->launch([&](unsigned i) { workers[i]->run(); });
  } else
#endif
  {
    std::vector<std::thread> threads;
    for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
    for (auto& th : threads) th.join();
  }

  RunSummary r;
  for (auto& w : workers) r.total.merge(w->stats());
  r.mean_value = mean_value_size(wl);
  r.ran = !sh.abort.load();
  if (opt.preload && sh.stamps[1] > sh.stamps[0]) r.preload_s = (sh.stamps[1] - sh.stamps[0]) / 1e9;
  if (r.ran) {
    uint64_t warm_end = sh.stamps[1] + static_cast<uint64_t>(opt.warmup * 1e9);
    if (r.total.measured_end_ns > warm_end)
      r.elapsed_s = (r.total.measured_end_ns - warm_end) / 1e9;
  }
  if (r.ran && r.total.requests == 0 && r.total.first_error.empty())
    r.total.first_error = "no request was answered in the measured window";
#ifdef CACHET_LOAD_DPDK
  if (dpdk) {
    r.link_json = dpdk->json();
    r.link_desc = dpdk->describe();
  }
#endif
  if (!opt.quiet) print_summary(opt, r);
  if (!opt.json.empty()) {
    std::string err;
    if (!write_json(opt, r, &err)) {
      fmt::print(stderr, "cachet-load: {}\n", err);
      return 1;
    }
  }
  if (r.total.setup_failed) {
    fmt::print(stderr, "cachet-load: {}\n", r.total.first_error);
    return 1;
  }
  if (!r.ok()) {
    fmt::print(stderr, "cachet-load: reply errors: {}\n", r.total.first_error);
    return 2;
  }
  return 0;
}

int run(Options& opt) {
#ifdef CACHET_LOAD_DPDK
  if (opt.dpdk()) {
    // EAL, the port and ARP first; the workers then run on the EAL lcores, one each.
    std::string err;
    std::unique_ptr<DpdkContext> dpdk = dpdk_open(opt, &err);  // outlives the workers
    if (!dpdk) {
      fmt::print(stderr, "cachet-load: {}\n", err);
      return 1;
    }
    opt.threads = dpdk->lcores();
    int rc = opt.mode == Mode::ceiling ? run_ceiling(opt, *dpdk) : run_load(opt, dpdk.get());
    if (opt.dpdk_linger > 0) dpdk->linger(opt.dpdk_linger);
    return rc;
  }
#else
  if (opt.dpdk()) {
    fmt::print(stderr,
               "cachet-load: --dpdk-args: this build has no DPDK transport (libdpdk-dev was not "
               "found when it was configured)\n");
    return 1;
  }
#endif
  return run_load(opt, nullptr);
}

}  // namespace
}  // namespace cachet::perf

int main(int argc, char** argv) {
  cachet::perf::Options opt;
  int rc = cachet::perf::parse_options(argc, argv, &opt);
  if (rc >= 0) return rc;
  return cachet::perf::run(opt);
}
