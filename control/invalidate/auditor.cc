// The auditor thread: short blocking calls (1 s bound) on its own connection per server.
#include "control/invalidate/auditor.hh"

#include <unistd.h>

#include <charconv>
#include <chrono>

#include "common/clock.hh"
#include "common/log.hh"
#include "control/invalidate/decoder.hh"
#include "control/net.hh"
#include "control/process.hh"

namespace cachet::invalidate {

namespace log = common::log;

namespace {
int64_t mono_us() { return static_cast<int64_t>(common::mono_ns() / 1000); }
constexpr int64_t kMarkEveryUs = 250000;
constexpr int kCallTimeoutMs = 1000;
constexpr size_t kMaxSamples = 10000;

// The CAS of a one-value `gets` reply ("VALUE k f n cas\r\n...END\r\n"); 0 for a miss.
bool cas_of(const std::string& reply, uint64_t* cas) {
  *cas = 0;
  if (reply.rfind("END\r\n", 0) == 0) return true;
  if (reply.rfind("VALUE ", 0) != 0) return false;
  const size_t eol = reply.find("\r\n");
  const size_t sp = reply.rfind(' ', eol);
  if (eol == std::string::npos || sp == std::string::npos) return false;
  auto [p, ec] = std::from_chars(reply.data() + sp + 1, reply.data() + eol, *cas);
  return ec == std::errc() && p == reply.data() + eol;
}

}  // namespace

Auditor::Auditor(double sample_rate, int64_t delay_ms, std::vector<Pool>* pools, Stats* stats)
    : rate_(sample_rate), delay_us_(delay_ms * 1000), pools_(pools), stats_(stats) {}

void Auditor::start() {
  if (rate_ <= 0) return;
  thread_ = std::thread([this] { run(); });
}

void Auditor::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& [s, w] : watches_)
    if (w.fd >= 0) ::close(w.fd);
  watches_.clear();
}

void Auditor::maybe_sample(Server* s, const Batch& batch) {
  if (rate_ <= 0 || batch.replay || batch.keys.empty() || (*pools_)[s->pool].router) return;
  if (std::uniform_real_distribution<double>(0, 1)(rng_) >= rate_) return;
  const std::string& key = batch.keys[rng_() % batch.keys.size()];
  std::lock_guard lock(mu_);
  if (samples_.size() >= kMaxSamples) {
    stats_->audit_skipped.add();
    return;
  }
  stats_->audit_samples.add();
  samples_.push_back(Sample{s, key, batch.sent_us});
}

bool Auditor::call(Server* s, Watch& w, const std::string& request, std::string_view term,
                   std::string* reply) {
  std::string error;
  if (w.fd < 0) {
    w.fd = control::connect_tcp(s->spec.host, s->spec.port, kCallTimeoutMs, &error);
    if (w.fd < 0) return false;
  }
  const int64_t deadline = control::now_ms() + kCallTimeoutMs;
  reply->clear();
  if (!control::write_all(w.fd, request, deadline, &error) ||
      control::read_until(w.fd, reply, term, deadline, false, &error) < 0) {
    ::close(w.fd);
    w.fd = -1;
    return false;
  }
  return true;
}

void Auditor::refresh_mark(Server* s, Watch& w, int64_t now) {
  w.next_mark_us = now + kMarkEveryUs;
  const std::string probe = kProbeKey;
  std::string reply;
  uint64_t cas = 0;
  const int64_t taken = mono_us();
  if (!call(s, w, "set " + probe + " 0 60 1\r\nx\r\ngets " + probe + "\r\n", "END\r\n", &reply))
    return;
  const size_t v = reply.find("VALUE ");
  if (v == std::string::npos || !cas_of(reply.substr(v), &cas) || cas == 0) return;
  w.marks.emplace_back(taken, cas);
  // Keep the marks a pending sample may still need.
  while (w.marks.size() > 2 && w.marks[1].first < now - delay_us_ - 2 * kMarkEveryUs)
    w.marks.pop_front();
}

void Auditor::check(const Sample& sample, Watch& w, int64_t now) {
  Server* s = sample.server;
  // The newest watermark taken before the delete was sent.
  uint64_t mark = 0;
  for (const auto& [taken, cas] : w.marks)
    if (taken < sample.sent_us) mark = cas;
  const bool spooling = s->spool_queued.load() > 0 || s->spool.pending_deletes() > 0;
  std::string reply;
  uint64_t cas = 0;
  if (mark == 0 || !s->up || spooling ||
      !call(s, w, "gets " + sample.key + "\r\n", "END\r\n", &reply) || !cas_of(reply, &cas)) {
    stats_->audit_skipped.add();
    return;
  }
  stats_->audit_checked.add();
  if (cas != 0 && cas < mark) {
    stats_->audit_misses.add();
    log::error("auditor: {} still holds '{}' {} ms after its delete was sent, with a value "
               "stored before (cas {} < watermark {})", s->label(), printable(sample.key),
               (now - sample.sent_us) / 1000, cas, mark);
  }
}

void Auditor::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stop_; });
    if (stop_) break;
    std::vector<Sample> due;
    const int64_t now = mono_us();
    while (!samples_.empty() && samples_.front().sent_us + delay_us_ <= now) {
      due.push_back(std::move(samples_.front()));
      samples_.pop_front();
    }
    lock.unlock();
    for (Pool& p : *pools_) {
      if (p.router) continue;
      for (auto& s : p.servers) {
        Watch& w = watches_[s.get()];
        if (s->up && now >= w.next_mark_us) refresh_mark(s.get(), w, now);
      }
    }
    for (const Sample& sample : due) check(sample, watches_[sample.server], mono_us());
    lock.lock();
  }
}

}  // namespace cachet::invalidate
