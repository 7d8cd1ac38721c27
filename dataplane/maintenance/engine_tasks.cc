// The maintenance tasks' steps, called by the engine's scheduling loop (engine.cc). Each step
// is bounded (a batch of pages, seconds, chunks or splits) so that the loop stays responsive.
#include "common/clock.hh"
#include "common/log.hh"
#include "dataplane/maintenance/engine_impl.hh"

namespace cachet::dataplane::maintenance {

namespace {

constexpr size_t kPagesPerStep = 64;        // sweeps and the repair scan, per parallel_for
constexpr uint32_t kChunksPerStep = 4096;   // page moves
constexpr uint32_t kSecondsPerStep = 64;    // the transient reaper, after a pause
constexpr uint32_t kSplitsPerStep = 1024;   // index growth
constexpr uint64_t kMoveRetryMs = 10;       // a pass met chunks in writers' hands
constexpr uint64_t kAggressiveLookMs = 100;  // mode 2 looks this often (or every interval)

}  // namespace

bool Engine::Impl::step_repair(uint32_t now) {
  if (!upkeep.repair_pending()) return false;
  const uint64_t t0 = common::mono_ns();
  const uint32_t given = upkeep.pages_given();
  std::vector<uint32_t> pages;
  for (uint32_t p = repair_next; p < given && pages.size() < kPagesPerStep; ++p) pages.push_back(p);
  std::atomic<uint64_t> orphans{0};
  over_pages(pages, 0, pages.size(), [&](store::Worker& w, uint32_t p, store::SweepTally& t) {
    orphans.fetch_add(upkeep.repair_page(w, p, now, t), std::memory_order_relaxed);
  });
  repair_next += static_cast<uint32_t>(pages.size());
  const bool done = repair_next >= given;
  if (done) {
    upkeep.repair_done();
    common::log::info("maintenance: crash repair scanned {} pages", given);
  }
  count(Task::repair, 1, orphans.load(), pages.size(), t0);
  return !done;
}

bool Engine::Impl::step_transient(uint32_t now) {
  if (upkeep.transient_backlog(now) == 0) return false;
  const uint64_t t0 = common::mono_ns();
  const store::ReapTally r = upkeep.reap_transient(worker(), now, kSecondsPerStep);
  count(Task::transient, 1, r.reaped, 0, t0);
  return upkeep.transient_backlog(now) > 0;
}

void Engine::Impl::end_move() {
  if (move.page != store::kNoPage) upkeep.cancel_move(move);
  moving.store(false);
}

bool Engine::Impl::step_rebalance(uint32_t now, uint64_t now_ms) {
  const int64_t mode = tunables.slab_automove();
  if (!moving.load(std::memory_order_relaxed)) {
    std::optional<std::pair<unsigned, unsigned>> asked;
    {
      std::lock_guard<std::mutex> lock(mu);
      asked.swap(request);
    }
    Move want;
    const uint64_t t0 = common::mono_ns();
    if (asked) {
      want = {asked->first, asked->second};
    } else if (mode != 0 && now_ms >= next_look_ms) {
      const auto interval = static_cast<uint64_t>(tunables.slab_automove_interval_ms());
      next_look_ms = now_ms + (mode == 2 ? std::min(interval, kAggressiveLookMs) : interval);
      want = choose_move(periods.next(upkeep.sample_classes(now)), mode,
                         tunables.slab_automove_threshold());
    } else {
      return false;
    }
    const bool began = want && upkeep.begin_move(want.from, want.to, &move);
    moving.store(began);
    count(Task::rebalance, 1, 0, 0, t0);
    if (!began) return false;
    common::log::debug("maintenance: moving page {} from class {} to class {}{}", move.page,
                       move.from, move.to, asked ? " (slabs reassign)" : "");
  }
  if (now_ms < move_retry_ms) return false;
  const uint64_t t0 = common::mono_ns();
  const uint64_t before = move.rescued + move.evicted + move.reclaimed;
  const store::MoveResult r = upkeep.move_step(worker(), move, kChunksPerStep, now);
  const uint64_t items = move.rescued + move.evicted + move.reclaimed - before;
  count(Task::rebalance, 0, items, r == store::MoveResult::done ? 1 : 0, t0);
  switch (r) {
    case store::MoveResult::working: return true;
    case store::MoveResult::waiting: move_retry_ms = now_ms + kMoveRetryMs; return false;
    case store::MoveResult::done:
    case store::MoveResult::failed: moving.store(false); return false;
  }
  return false;
}

bool Engine::Impl::step_reclaim(uint32_t now, uint64_t now_ms) {
  if (sweep.cls == 0) {
    const auto [oldest_live, oldest_cas] = upkeep.flush_marks();
    plan.note_flush(oldest_live, oldest_cas);
    const std::vector<store::ClassSample> classes = upkeep.sample_classes(now, false);
    const unsigned cls = plan.due(classes, now, now_ms);
    if (cls == 0) return false;
    sweep = Sweep{};
    sweep.cls = cls;
    sweep.pages = upkeep.pages_of(cls);
    sweep.start_ms = now_ms;
    sweep.flushes = plan.flushes();
    for (const store::ClassSample& c : classes)
      if (c.id == cls) sweep.ttl_sets = c.ttl_sets;
  }
  const uint64_t t0 = common::mono_ns();
  const size_t n = std::min(kPagesPerStep, sweep.pages.size() - sweep.next);
  const store::SweepTally t =
      over_pages(sweep.pages, sweep.next, n, [&](store::Worker& w, uint32_t p, store::SweepTally& t) {
        upkeep.sweep_page(w, p, now, t);
      });
  sweep.tally.add(t);
  sweep.next += n;
  const bool done = sweep.next >= sweep.pages.size();
  count(Task::reclaim, done ? 1 : 0, t.reclaimed, n, t0);
  if (!done) return true;
  plan.swept(sweep.cls, sweep.tally, sweep.ttl_sets, sweep.start_ms, sweep.flushes);
  sweep.cls = 0;
  return false;
}

bool Engine::Impl::step_index() {
  const uint64_t t0 = common::mono_ns();
  const uint32_t splits = upkeep.grow_index(kSplitsPerStep);
  if (splits == 0) return false;
  count(Task::index, 1, splits, 0, t0);
  return splits == kSplitsPerStep;
}

}  // namespace cachet::dataplane::maintenance
