// Worker: thread body, phases and request issue. Reply handling is in worker_replies.cc.
#include "perf/loadgen/worker.hh"

#include <fmt/core.h>

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>

namespace cachet::perf {
namespace {
constexpr unsigned kPreloadDepth = 32;          // sets in flight per connection while preloading
constexpr uint64_t kMaxPollNs = 1'000'000;      // look at the clock at least every millisecond
constexpr uint64_t kExpireEveryNs = 5'000'000;  // UDP timeout scan period
}  // namespace

void Stats::merge(const Stats& o) {
  requests += o.requests;
  key_ops += o.key_ops;
  gets += o.gets;
  get_keys += o.get_keys;
  hits += o.hits;
  misses += o.misses;
  sets += o.sets;
  preload_sets += o.preload_sets;
  protocol_errors += o.protocol_errors;
  server_errors += o.server_errors;
  value_errors += o.value_errors;
  conn_errors += o.conn_errors;
  timeouts += o.timeouts;
  polls += o.polls;
  empty_polls += o.empty_polls;
  cpu_ns += o.cpu_ns;
  measured_end_ns = std::max(measured_end_ns, o.measured_end_ns);
  preload_incomplete = preload_incomplete || o.preload_incomplete;
  setup_failed = setup_failed || o.setup_failed;
  if (first_error.empty()) first_error = o.first_error;
  lat.merge(o.lat);
  lat_get.merge(o.lat_get);
  lat_set.merge(o.lat_set);
}

Worker::Worker(unsigned index, Shared& sh, unsigned nconns, uint32_t key_lo, uint32_t key_hi,
               uint64_t quota)
    : index_(index),
      sh_(sh),
      opt_(sh.opt),
      wl_(sh.wl),
      depth_(sh.opt.preload ? std::max(sh.opt.pipeline, kPreloadDepth) : sh.opt.pipeline),
      rng_(mix64(sh.opt.seed * 0x9e3779b97f4a7c15ull + index + 1)),
      preload_next_(key_lo),
      preload_end_(key_hi),
      quota_(quota) {
  // Lengths are checked only when this run stored every key: UDP may have dropped preload sets.
  ReplyParser proto(wl_, opt_.preload && !opt_.udp, opt_.gets_cmd);
  conns_.reserve(nconns);
  for (unsigned i = 0; i < nconns; ++i) {
    conns_.emplace_back(proto);
    conns_.back().ring.resize(depth_);
    conns_.back().keys.resize(static_cast<size_t>(depth_) * opt_.multiget);
  }
}

void Worker::run() {
  tr_ = opt_.io == IoKind::uring ? make_uring_transport() : make_epoll_transport();
  std::string err;
  if (tr_->open(opt_.host, opt_.port, static_cast<unsigned>(conns_.size()),
                opt_.udp ? Framing::datagram : Framing::stream, &err)) {
    live_ = static_cast<unsigned>(conns_.size());
  } else {
    st_.setup_failed = true;
    note_error(err);
    sh_.abort.store(true);
  }
  sh_.barrier.arrive_and_wait();  // everyone connected (or someone failed)

  if (!sh_.abort.load() && opt_.preload) {
    uint64_t start = common::mono_ns();
    run_phase(Phase::preload, start + static_cast<uint64_t>(opt_.preload_timeout * 1e9));
    if (!sh_.abort.load() && !phase_done()) {
      st_.preload_incomplete = true;
      note_error(live_ == 0
                     ? "preload stopped: no connection left"
                     : fmt::format("preload did not finish within {} s", opt_.preload_timeout));
      sh_.abort.store(true);
    }
  }
  sh_.barrier.arrive_and_wait();  // everyone preloaded; the barrier stamped t0

  if (!sh_.abort.load()) {
    uint64_t t0 = sh_.stamps[1];
    warm_end_ = t0 + static_cast<uint64_t>(opt_.warmup * 1e9);
    end_ = warm_end_ + static_cast<uint64_t>(opt_.duration * 1e9);
    run_phase(Phase::run, end_);
    // The window ends at the deadline, or earlier when the request bound was met (at the last
    // answer) or no connection was left.
    st_.measured_end_ns = quota_ && issued_measured_ >= quota_ && in_flight_ == 0
                              ? last_done_
                              : std::min(common::mono_ns(), end_);
  }
  tr_->close_all();
}

void Worker::run_phase(Phase phase, uint64_t deadline) {
  phase_ = phase;
  uint64_t now = common::mono_ns();
  for (uint32_t c = 0; c < conns_.size(); ++c) fill(c, now);
  uint64_t next_expire = now + kExpireEveryNs;
  bool window = false;  // inside the measured window (run phase)
  while (live_ > 0 && !phase_done() && !sh_.abort.load(std::memory_order_relaxed)) {
    now = common::mono_ns();
    if (now >= deadline) break;
    if (phase == Phase::run && !window && now >= warm_end_) {
      window = true;
      mark_window(true);
    }
    uint64_t wait_us =
        opt_.busy_poll ? 0 : std::max<uint64_t>(std::min(deadline - now, kMaxPollNs) / 1000, 1);
    if (tr_->poll(wait_us, *this) == 0) ++st_.empty_polls;
    ++st_.polls;
    if (opt_.udp && now >= next_expire) {
      expire(now);
      next_expire = now + kExpireEveryNs;
    }
  }
  if (window) mark_window(false);
}

// Takes this thread's CPU time at the window's edges; thread 0 also tells a driving script
// (--marks) so that it can sample the server's CPU time over the same window.
void Worker::mark_window(bool start) {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  auto ns = [](const timeval& tv) { return tv.tv_sec * 1'000'000'000ull + tv.tv_usec * 1000ull; };
  uint64_t cpu = ns(ru.ru_utime) + ns(ru.ru_stime);
  if (start)
    cpu_at_start_ = cpu;
  else
    st_.cpu_ns += cpu - cpu_at_start_;
  if (index_ == 0 && opt_.marks) {
    fmt::print("cachet-load: window {}\n", start ? "start" : "end");
    std::fflush(stdout);
  }
}

bool Worker::phase_done() const {
  if (phase_ == Phase::preload) return preload_next_ >= preload_end_ && in_flight_ == 0;
  return quota_ && issued_measured_ >= quota_ && in_flight_ == 0;
}

// Issues requests on connection c until its pipeline is full or the phase allows no more.
// A stream connection gets the whole batch in one send.
void Worker::fill(uint32_t c, uint64_t now) {
  Conn& k = conns_[c];
  if (!k.alive) return;
  const unsigned limit = phase_ == Phase::preload ? depth_ : opt_.pipeline;
  const unsigned kmax = opt_.multiget;
  while (k.count < limit) {
    uint32_t slot = (k.head + k.count) % depth_;
    uint32_t* keys = &k.keys[static_cast<size_t>(slot) * kmax];
    ReplyKind kind = ReplyKind::get;
    unsigned n = 1;
    if (phase_ == Phase::preload) {
      if (preload_next_ >= preload_end_) break;
      kind = ReplyKind::set;
      keys[0] = preload_next_++;
    } else {
      if (now >= end_) break;
      if (now >= warm_end_) {
        if (quota_ && issued_measured_ >= quota_) break;
        ++issued_measured_;
      }
      if (opt_.get_ratio >= 1.0 || rng_.uniform() < opt_.get_ratio) {
        n = kmax;
        for (unsigned j = 0; j < n; ++j) keys[j] = rng_.below(wl_.keys());
      } else {
        kind = ReplyKind::set;
        keys[0] = rng_.below(wl_.keys());
      }
    }
    uint16_t id = k.next_id++;
    if (opt_.udp) {  // frame header: request id, sequence 0, total 1, reserved 0
      const char hdr[8] = {
          static_cast<char>(id >> 8), static_cast<char>(id & 0xff), 0, 0, 0, 1, 0, 0};
      scratch_.append(hdr, sizeof hdr);
    }
    if (kind == ReplyKind::get)
      wl_.encode_get(keys, n, scratch_);
    else
      wl_.encode_set(keys[0], scratch_);
    if (opt_.udp) {
      tr_->send(c, scratch_.view());
      scratch_.clear();
    }
    k.ring[slot] = InFlight{now, kind, false, static_cast<uint16_t>(n), id};
    ++k.count;
    ++in_flight_;
  }
  if (!scratch_.empty()) {
    tr_->send(c, scratch_.view());
    scratch_.clear();
  }
}

void Worker::kill(uint32_t c, const std::string& why, uint64_t& counter) {
  Conn& k = conns_[c];
  if (!k.alive) return;
  k.alive = false;
  --live_;
  in_flight_ -= k.count;
  k.count = 0;
  k.rx.clear();
  ++counter;
  note_error(why);
}

void Worker::note_error(const std::string& what) {
  if (st_.first_error.empty()) st_.first_error = fmt::format("thread {}: {}", index_, what);
}

}  // namespace cachet::perf
