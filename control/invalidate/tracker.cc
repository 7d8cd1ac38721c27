// Unit settlement: an ordered deque checked from its front.
#include "control/invalidate/tracker.hh"

#include <chrono>

namespace cachet::invalidate {

bool Tracker::wait_for_room(int timeout_ms) {
  std::unique_lock lock(mu_);
  return room_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return inflight_ < max_; });
}

void Tracker::reserve(uint64_t n) {
  std::lock_guard lock(mu_);
  inflight_ += n;
  stats_->inflight.set(inflight_);
}

uint64_t Tracker::inflight() const {
  std::lock_guard lock(mu_);
  return inflight_;
}

void Tracker::add(uint64_t seq, uint64_t end_lsn, int64_t commit_time_us,
                  std::vector<std::pair<Server*, uint64_t>> reqs) {
  {
    std::lock_guard lock(mu_);
    units_.push_back(Rec{seq, end_lsn, commit_time_us, std::move(reqs)});
  }
  advance();
}

void Tracker::advance() {
  std::lock_guard lock(mu_);
  uint64_t retired = 0;
  while (!units_.empty()) {
    const Rec& r = units_.front();
    bool settled = true;
    for (const auto& [server, pos] : r.reqs) settled &= server->settled() >= pos;
    if (!settled) break;
    if (r.end_lsn > confirmed_) confirmed_ = r.end_lsn;
    units_.pop_front();
    ++retired;
  }
  if (retired == 0) return;
  inflight_ = inflight_ > retired ? inflight_ - retired : 0;
  stats_->inflight.set(inflight_);
  stats_->confirmed_lsn.set(confirmed_);
  room_.notify_all();
}

uint64_t Tracker::confirmed_lsn() const {
  std::lock_guard lock(mu_);
  return confirmed_;
}

void Tracker::confirm_idle(uint64_t wal_end) {
  std::lock_guard lock(mu_);
  if (inflight_ == 0 && units_.empty() && wal_end > confirmed_) {
    confirmed_ = wal_end;
    stats_->confirmed_lsn.set(confirmed_);
  }
}

int64_t Tracker::oldest_commit_us() const {
  std::lock_guard lock(mu_);
  for (const Rec& r : units_)
    if (r.commit_time_us) return r.commit_time_us;
  return 0;
}

size_t Tracker::tracked() const {
  std::lock_guard lock(mu_);
  return units_.size();
}

void Tracker::reset_budget() {
  std::lock_guard lock(mu_);
  inflight_ = units_.size();
  stats_->inflight.set(inflight_);
  room_.notify_all();
}

}  // namespace cachet::invalidate
