// The maintenance engine's arena, threads and scheduling loop, `slabs reassign` and its stats.
#include "dataplane/maintenance/engine_impl.hh"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <fstream>

#include <fmt/format.h>

#include "common/clock.hh"
#include "common/log.hh"

namespace cachet::dataplane::maintenance {

namespace {

constexpr const char* kTaskNames[] = {
#define CACHET_X(name, desc) #name,
    CACHET_MAINTENANCE_TASKS(CACHET_X)
#undef CACHET_X
};

// "0-3,8,10-11" -> {0, 1, 2, 3, 8, 10, 11}
std::vector<unsigned> parse_cpu_list(const std::string& s) {
  std::vector<unsigned> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    const std::string part = s.substr(pos, end - pos);
    const size_t dash = part.find('-');
    try {
      const unsigned lo = static_cast<unsigned>(std::stoul(part.substr(0, dash)));
      const unsigned hi =
          dash == std::string::npos ? lo : static_cast<unsigned>(std::stoul(part.substr(dash + 1)));
      for (unsigned c = lo; c <= hi && c < CPU_SETSIZE; ++c) out.push_back(c);
    } catch (const std::exception&) {
    }
    pos = end + 1;
  }
  return out;
}

std::vector<unsigned> online_cpus() {
  std::ifstream f("/sys/devices/system/cpu/online");
  std::string line;
  std::vector<unsigned> out;
  if (std::getline(f, line)) out = parse_cpu_list(line);
  if (out.empty()) out = process_cpus();
  return out;
}

std::string show_cpus(const std::vector<unsigned>& cpus) {
  std::string s;
  for (unsigned c : cpus) s += fmt::format("{}{}", s.empty() ? "" : ",", c);
  return s;
}

}  // namespace

std::vector<unsigned> process_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<unsigned> out;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

std::vector<unsigned> engine_cpus(const std::vector<unsigned>& allowed,
                                  const std::vector<unsigned>& avoid,
                                  const std::vector<unsigned>& online) {
  auto minus = [&](const std::vector<unsigned>& from) {
    std::vector<unsigned> out;
    for (unsigned c : from)
      if (std::find(avoid.begin(), avoid.end(), c) == avoid.end()) out.push_back(c);
    return out;
  };
  const std::vector<unsigned>& base = allowed.empty() ? online : allowed;
  std::vector<unsigned> out = minus(base);
  if (out.empty()) out = minus(online);
  if (out.empty()) out = base;
  return out;
}

Pinner::Pinner(tbb::task_arena& arena, const std::vector<unsigned>& cpus)
    : tbb::task_scheduler_observer(arena), cpus_(cpus) {
  observe(true);
}

void Pinner::on_scheduler_entry(bool) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (unsigned c : cpus_) CPU_SET(c, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  pthread_setname_np(pthread_self(), "cachet-maint");
}

Engine::Impl::Impl(store::Store& s, Tunables& t, EngineOptions o)
    : store(s),
      tunables(t),
      opts(std::move(o)),
      cpus(engine_cpus(opts.allowed_cpus, opts.avoid_cpus, online_cpus())),
      upkeep(s),
      arena(static_cast<int>(opts.threads), 0) {
  // TBB starts as many workers as CPUs less one; a bigger engine needs room for its own.
  const size_t default_limit =
      tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism);
  if (opts.threads + 1 > default_limit)
    control = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, opts.threads + 1);
  arena.initialize();
  pinner = std::make_unique<Pinner>(arena, cpus);
}

store::Worker& Engine::Impl::worker() {
  const int slot = tbb::this_task_arena::current_thread_index();
  const unsigned i = slot < 0 ? 0 : std::min<unsigned>(static_cast<unsigned>(slot), opts.threads - 1);
  return store.upkeep_worker(i);
}

void Engine::Impl::count(Task t, uint64_t runs, uint64_t items, uint64_t pages, uint64_t t0_ns) {
  TaskCounters& c = figures[static_cast<size_t>(t)];
  c.runs.fetch_add(runs, std::memory_order_relaxed);
  c.items.fetch_add(items, std::memory_order_relaxed);
  c.pages.fetch_add(pages, std::memory_order_relaxed);
  c.usec.fetch_add((common::mono_ns() - t0_ns) / 1000, std::memory_order_relaxed);
}

void Engine::Impl::loop() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) break;
    }
    const uint64_t now_ms = common::now_unix_ms();
    const uint32_t now = static_cast<uint32_t>(now_ms / 1000);
    store.set_transient_ttl(static_cast<uint32_t>(tunables.transient_ttl()));
    bool more = step_repair(now);
    more |= step_transient(now);
    more |= step_rebalance(now, now_ms);
    more |= step_reclaim(now, now_ms);
    more |= step_index();
    // Asleep until the next second begins (the reaper's beat), the rebalancer's next look, a
    // move's next pass, a request or stop; at once when a step has more to do.
    uint64_t wake = (uint64_t{now} + 1) * 1000 + 5;
    if (tunables.slab_automove() != 0) wake = std::min(wake, next_look_ms);
    if (moving.load(std::memory_order_relaxed)) wake = std::min(wake, move_retry_ms);
    std::unique_lock<std::mutex> lock(mu);
    if (more || stopping || request || wake <= now_ms) continue;
    cv.wait_for(lock, std::chrono::milliseconds(wake - now_ms),
                [&] { return stopping || request.has_value(); });
  }
  if (moving.load()) end_move();
  std::lock_guard<std::mutex> lock(mu);
  finished = true;
  cv.notify_all();
}

Engine::Engine(store::Store& store, Tunables& tunables, EngineOptions opts)
    : impl_(std::make_unique<Impl>(store, tunables, std::move(opts))) {}

Engine::~Engine() { stop(); }

void Engine::start() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.started) return;
    m.started = true;
  }
  common::log::info("maintenance: {} thread(s) on cpu {}", m.opts.threads, show_cpus(m.cpus));
  m.arena.enqueue([&m] { m.loop(); });
}

void Engine::stop() {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lock(m.mu);
  if (!m.started || m.finished) return;
  m.stopping = true;
  m.cv.notify_all();
  m.cv.wait(lock, [&] { return m.finished; });
}

Reassign check_reassign(const store::Store& store, int32_t* src, int32_t dst) {
  if (*src == dst) return Reassign::same;
  const std::vector<store::ClassStats> classes = store.class_stats();
  if (*src == -1) {  // memcached's "any": here the class with the most pages to spare
    uint64_t most = 1;
    for (const store::ClassStats& c : classes)
      if (static_cast<int32_t>(c.id) != dst && c.total_pages > most)
        most = c.total_pages, *src = static_cast<int32_t>(c.id);
  }
  // Class 0 is memcached's pool of pages given back: Cachet hands pages from class to class
  // and keeps no such pool, so as a source it never has a page, and as a target it is refused.
  const auto n = static_cast<int32_t>(store.slab_classes());
  if (*src < 0 || *src > n || dst < 1 || dst > n) return Reassign::badclass;
  for (const store::ClassStats& c : classes)
    if (static_cast<int32_t>(c.id) == *src && c.total_pages >= 2) return Reassign::ok;
  return Reassign::nospare;
}

Reassign Engine::request_move(int32_t src, int32_t dst) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (m.request || m.moving.load()) return Reassign::busy;
  const Reassign r = check_reassign(m.store, &src, dst);
  if (r != Reassign::ok) return r;
  m.request = {static_cast<unsigned>(src), static_cast<unsigned>(dst)};
  m.cv.notify_all();
  return Reassign::ok;
}

TaskFigures Engine::figures(Task t) const {
  const TaskCounters& c = impl_->figures[static_cast<size_t>(t)];
  return {c.runs.load(), c.items.load(), c.pages.load(), c.usec.load()};
}

void Engine::extra_stats(std::vector<std::pair<std::string, uint64_t>>& out) const {
  out.emplace_back("maintenance_threads", impl_->opts.threads);
  for (unsigned i = 0; i < static_cast<unsigned>(Task::count); ++i) {
    const TaskFigures f = figures(static_cast<Task>(i));
    const std::string p = fmt::format("maintenance:{}:", kTaskNames[i]);
    out.emplace_back(p + "runs", f.runs);
    out.emplace_back(p + "items", f.items);
    out.emplace_back(p + "pages", f.pages);
    out.emplace_back(p + "usec", f.usec);
  }
}

const std::vector<unsigned>& Engine::cpus() const { return impl_->cpus; }
unsigned Engine::threads() const { return impl_->opts.threads; }

}  // namespace cachet::dataplane::maintenance
