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
  frame_errors += o.frame_errors;
  tx_packets += o.tx_packets;
  rx_packets += o.rx_packets;
  timeouts_are_errors = timeouts_are_errors || o.timeouts_are_errors;
  for (const auto& [k, v] : o.server_stats) server_stats[k] += v;
  for (const auto& [k, v] : o.server_stats_end) server_stats_end[k] += v;
  for (const auto& [k, v] : o.server_idle_rate) server_idle_rate[k] += v;
  polls += o.polls;
  idle_ns += o.idle_ns;
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
  // Lengths are checked only when this run stored every key: kernel UDP may have dropped
  // preload sets. Over DPDK a lost datagram is an error, so a finished preload stored them all.
  ReplyParser proto(wl_, opt_.preload && (!opt_.udp || opt_.dpdk()), opt_.gets_cmd);
  st_.timeouts_are_errors = opt_.dpdk();
  conns_.reserve(nconns);
  for (unsigned i = 0; i < nconns; ++i) {
    conns_.emplace_back(proto);
    conns_.back().ring.resize(depth_);
    conns_.back().keys.resize(static_cast<size_t>(depth_) * opt_.multiget);
  }
}

void Worker::run() {
  if (sh_.make_transport)
    tr_ = sh_.make_transport(index_);
  else
    tr_ = opt_.io == IoKind::uring ? make_uring_transport() : make_epoll_transport();
  std::string err;
  const bool probe = opt_.server_stats && index_ == 0;
  if (probe) probe_conn_ = static_cast<uint32_t>(conns_.size());
  if (tr_ && tr_->open(opt_.host, opt_.port, static_cast<unsigned>(conns_.size()) + probe,
                       opt_.udp ? Framing::datagram : Framing::stream, &err)) {
    live_ = static_cast<unsigned>(conns_.size());
  } else {
    st_.setup_failed = true;
    note_error(err);
    sh_.abort.store(true);
  }
  if (!sh_.abort.load() && probe_conn_ != UINT32_MAX) measure_server_idle();
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
    // The closing `stats` reply: a bounded wait (answers to requests still in flight are
    // parsed meanwhile but no longer counted).
    for (uint64_t until = common::mono_ns() + 1'000'000'000;
         probe_edge_ >= 0 && common::mono_ns() < until;)
      tr_->poll(opt_.busy_poll || opt_.dpdk() ? 0 : 1000, *this);
    if (probe_done_[1]) st_.server_stats_end = probe_at_[1];
    if (probe_done_[0] && probe_done_[1])
      for (const auto& [k, v] : probe_at_[1])
        if (auto it = probe_at_[0].find(k); it != probe_at_[0].end())
          st_.server_stats[k] = v - it->second;
  }
  if (tr_) {
    LinkCounters lc = tr_->link_counters();
    st_.frame_errors += lc.bad_frames;
    if (lc.bad_frames) note_error(lc.first_bad);
    tr_->close_all();
  }
}

void Worker::run_phase(Phase phase, uint64_t deadline) {
  phase_ = phase;
  uint64_t now = common::mono_ns();
  bool window = false;  // inside the measured window (run phase)
  if (phase == Phase::run && now >= warm_end_) {
    // No warmup: the window opens before the first request (and the server's `stats` probe
    // goes out ahead of it, so the server's counters cover exactly the measured requests).
    window = true;
    mark_window(true);
  }
  for (uint32_t c = 0; c < conns_.size(); ++c) fill(c, now);
  uint64_t next_expire = now + kExpireEveryNs;
  bool was_empty = false;
  uint64_t prev = now;
  while (live_ > 0 && !phase_done() && !sh_.abort.load(std::memory_order_relaxed)) {
    now = common::mono_ns();
    if (window && was_empty) st_.idle_ns += now - prev;
    prev = now;
    if (now >= deadline) break;
    if (phase == Phase::run && !window && now >= warm_end_) {
      window = true;
      mark_window(true);
    }
    uint64_t wait_us =
        opt_.busy_poll ? 0 : std::max<uint64_t>(std::min(deadline - now, kMaxPollNs) / 1000, 1);
    rx_now_ = 0;
    was_empty = tr_->poll(wait_us, *this) == 0;
    if (was_empty) ++st_.empty_polls;
    ++st_.polls;
    if (opt_.udp && now >= next_expire) {
      // A fresh clock: requests sent during poll() carry times later than `now`.
      uint64_t t = common::mono_ns();
      expire(t);
      next_expire = t + kExpireEveryNs;
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
  LinkCounters lc = tr_->link_counters();
  if (start) {
    cpu_at_start_ = cpu;
    link_at_start_ = lc;
  } else {
    st_.cpu_ns += cpu - cpu_at_start_;
    st_.tx_packets += lc.tx_packets - link_at_start_.tx_packets;
    st_.rx_packets += lc.rx_packets - link_at_start_.rx_packets;
  }
  if (probe_conn_ != UINT32_MAX) send_probe(start ? 0 : 1);
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

bool Worker::probe_sync(int edge, uint64_t timeout_ns) {
  send_probe(edge);
  for (uint64_t until = common::mono_ns() + timeout_ns;
       probe_edge_ >= 0 && common::mono_ns() < until;)
    tr_->poll(opt_.busy_poll || opt_.dpdk() ? 0 : 1000, *this);
  if (probe_edge_ >= 0) probe_edge_ = -1;  // a late reply is ignored
  return probe_done_[edge];
}

// The server's counters while it has nothing to do: two `stats` 300 ms apart before any load.
// perf/run divides the window's empty polls by this rate to estimate the server's idle time.
void Worker::measure_server_idle() {
  if (!probe_sync(2, 500'000'000)) return;
  for (uint64_t until = common::mono_ns() + 300'000'000; common::mono_ns() < until;)
    tr_->poll(opt_.busy_poll || opt_.dpdk() ? 0 : 1000, *this);
  if (!probe_sync(3, 500'000'000)) return;
  double secs = (probe_ns_[3] - probe_ns_[2]) / 1e9;
  if (secs <= 0) return;
  for (const auto& [k, v] : probe_at_[3])
    if (auto it = probe_at_[2].find(k); it != probe_at_[2].end())
      st_.server_idle_rate[k] = static_cast<double>(v - it->second) / secs;
}

// Asks the server for `stats` on the probe connection; the reply is parsed by on_probe().
void Worker::send_probe(int edge) {
  probe_edge_ = edge;
  probe_rx_.clear();
  const uint16_t id = static_cast<uint16_t>(0xfff0 + edge);
  const char req[] = {static_cast<char>(id >> 8), static_cast<char>(id & 0xff), 0, 0, 0, 1, 0, 0,
                      's', 't', 'a', 't', 's', '\r', '\n'};
  tr_->send(probe_conn_, std::string_view(req, sizeof req));
}

void Worker::note_error(const std::string& what) {
  if (st_.first_error.empty()) st_.first_error = fmt::format("thread {}: {}", index_, what);
}

}  // namespace cachet::perf
