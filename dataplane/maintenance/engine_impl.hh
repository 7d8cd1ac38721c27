// The engine's insides, shared by engine.cc (arena, threads, scheduling loop, stats) and
// engine_tasks.cc (the tasks' steps). Nothing outside dataplane/maintenance includes this.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include <oneapi/tbb/combinable.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include "dataplane/maintenance/engine.hh"
#include "dataplane/maintenance/rebalance.hh"
#include "dataplane/maintenance/sweep.hh"
#include "store/upkeep.hh"

namespace cachet::dataplane::maintenance {

// Pins every thread that enters the arena to the engine's CPUs.
class Pinner : public tbb::task_scheduler_observer {
 public:
  Pinner(tbb::task_arena& arena, const std::vector<unsigned>& cpus);
  ~Pinner() override { observe(false); }
  void on_scheduler_entry(bool worker) override;

 private:
  std::vector<unsigned> cpus_;
};

// TBB's scheduler, held from before the arena until after it: at the end the engine waits for
// TBB's worker threads to leave (tbb::finalize), so nothing of the arena (its observer list,
// with the Pinner's proxy) outlives the engine into process exit, where a successor's takeover
// or a stop would otherwise leave it to the sanitizers as a leak.
struct Scheduler {
  tbb::task_scheduler_handle handle{tbb::attach{}};
  ~Scheduler() { tbb::finalize(handle, std::nothrow); }  // false: another TBB user remains
};

struct TaskCounters {
  std::atomic<uint64_t> runs{0}, items{0}, pages{0}, usec{0};
};

struct Engine::Impl {
  Impl(store::Store& s, Tunables& t, EngineOptions o);

  // ---- the scheduling task (engine.cc) ----
  void loop();
  store::Worker& worker();  // the calling thread's background worker handle
  // Runs per_page(worker, page, tally) for pages[first, first + n) with tbb::parallel_for in
  // this arena; returns the tallies summed.
  template <class F>
  store::SweepTally over_pages(const std::vector<uint32_t>& pages, size_t first, size_t n,
                               F&& per_page);
  void count(Task t, uint64_t runs, uint64_t items, uint64_t pages, uint64_t t0_ns);

  // ---- the tasks' steps (engine_tasks.cc); each returns true when it has more to do now ----
  bool step_repair(uint32_t now);
  bool step_transient(uint32_t now);
  bool step_rebalance(uint32_t now, uint64_t now_ms);
  bool step_reclaim(uint32_t now, uint64_t now_ms);
  bool step_index();
  void end_move();

  store::Store& store;
  Tunables& tunables;
  const EngineOptions opts;
  const std::vector<unsigned> cpus;
  store::Upkeep upkeep;
  Scheduler scheduler;  // before control and arena: released after them
  std::unique_ptr<tbb::global_control> control;  // room for opts.threads TBB workers
  tbb::task_arena arena;
  std::unique_ptr<Pinner> pinner;
  std::array<TaskCounters, static_cast<size_t>(Task::count)> figures;

  std::mutex mu;
  std::condition_variable cv;
  bool started = false, stopping = false, finished = false;
  std::optional<std::pair<unsigned, unsigned>> request;  // a `slabs reassign` to carry out
  std::atomic<bool> moving{false};

  // Task state: the scheduling task's alone.
  Periods periods;
  SweepPlan plan;
  store::PageMove move;
  uint64_t move_retry_ms = 0;  // a pass found chunks in flight: look again then
  uint64_t next_look_ms = 0;   // the rebalancer's next decision
  struct Sweep {
    unsigned cls = 0;  // 0: none running
    std::vector<uint32_t> pages;
    size_t next = 0;
    store::SweepTally tally;
    uint64_t start_ms = 0, ttl_sets = 0, flushes = 0;
  } sweep;
  uint32_t repair_next = 0;
};

template <class F>
store::SweepTally Engine::Impl::over_pages(const std::vector<uint32_t>& pages, size_t first,
                                           size_t n, F&& per_page) {
  tbb::combinable<store::SweepTally> tallies;
  tbb::parallel_for(tbb::blocked_range<size_t>(first, first + n, 1),
                    [&](const tbb::blocked_range<size_t>& r) {
                      store::Worker& w = worker();
                      store::SweepTally& t = tallies.local();
                      for (size_t i = r.begin(); i != r.end(); ++i) per_page(w, pages[i], t);
                    });
  store::SweepTally sum;
  tallies.combine_each([&](const store::SweepTally& t) { sum.add(t); });
  return sum;
}

}  // namespace cachet::dataplane::maintenance
