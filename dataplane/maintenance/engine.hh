// The maintenance engine: all of cachetd's background work on the store, as tasks in one
// tbb::task_arena of its own (sized by --maintenance-threads), its threads pinned to CPUs no
// driver busy-polls. One scheduling task wakes at least once a second and runs, each in bounded
// steps: the repair scan after a crash, the transient wheel's reaper, the slab rebalancer (the
// policy in rebalance.hh, page moves from store::Upkeep, `slabs reassign`), sweeps of classes
// whose dead items are worth freeing (sweep.hh) and index splits ahead of the writers. Scans
// over many pages run as tbb::parallel_for inside the same arena. The dataplane never waits for
// it: every step holds one class lock for O(1) list work or one bucket lock around one item.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/tunables.hh"
#include "store/store.hh"

namespace cachet::dataplane::maintenance {

// X(task, description): the engine's tasks, each with its own figures in `stats`
// (maintenance:<task>:runs|items|pages|usec).
#define CACHET_MAINTENANCE_TASKS(X)                                                      \
  X(rebalance, "slab page moves: rebalancer decisions and the steps of moving pages")    \
  X(transient, "transient item cache: each passed second's short-lived items freed")     \
  X(reclaim, "sweeps of classes freeing expired and flushed items")                      \
  X(repair, "scan of every page after a crash (chunks taken but never linked)")          \
  X(index, "hash index buckets split ahead of the writers")

enum class Task : unsigned {
#define CACHET_X(name, desc) name,
  CACHET_MAINTENANCE_TASKS(CACHET_X)
#undef CACHET_X
  count
};

// What a task has done since start: steps that did work, items and pages they touched, and the
// time they took.
struct TaskFigures {
  uint64_t runs = 0, items = 0, pages = 0, usec = 0;
};

struct EngineOptions {
  unsigned threads = 1;               // the arena's concurrency (store opts.upkeep_workers)
  std::vector<unsigned> allowed_cpus;  // the process's CPUs (taskset), empty = every online CPU
  std::vector<unsigned> avoid_cpus;    // CPUs a driver busy-polls
};

// memcached's replies to `slabs reassign`.
enum class Reassign : uint8_t { ok, busy, badclass, nospare, same };

// memcached's checks of `slabs reassign <src> <dst>` after its busy check, in its order: same
// class, then class ids (src -1: the class with the most pages to spare, written to *src), then
// a source with fewer than two pages.
Reassign check_reassign(const store::Store& store, int32_t* src, int32_t dst);

// The CPUs this process may run on now; call before DPDK's EAL pins the main thread.
std::vector<unsigned> process_cpus();

// Where the engine's threads run: allowed minus avoided; when the process is allowed only
// polled CPUs, the other online CPUs (a background thread must never preempt a poll loop);
// when every online CPU is polled, the allowed ones. Never empty.
std::vector<unsigned> engine_cpus(const std::vector<unsigned>& allowed,
                                  const std::vector<unsigned>& avoid,
                                  const std::vector<unsigned>& online);

class Engine {
 public:
  // The store must have opts.threads upkeep workers; store and tunables outlive the engine.
  Engine(store::Store& store, Tunables& tunables, EngineOptions opts);
  ~Engine();  // stops
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Starts the scheduling task; returns at once.
  void start();
  // Gives a page being moved back to its class and returns once no task runs any more.
  void stop();

  // memcached's `slabs reassign <src> <dst>` (src -1: any class with a page to spare): checked
  // now, carried out by the engine (ok), refused with memcached's reasons.
  Reassign request_move(int32_t src, int32_t dst);

  TaskFigures figures(Task t) const;
  // The engine's lines for `stats`: per-task figures and the threads' CPUs.
  void extra_stats(std::vector<std::pair<std::string, uint64_t>>& out) const;
  const std::vector<unsigned>& cpus() const;
  unsigned threads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachet::dataplane::maintenance
