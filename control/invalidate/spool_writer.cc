// Spool writes: one fdatasync per server per round; a full spool leaves its batches queued and
// retries every 100 ms, loudly.
#include "control/invalidate/spool_writer.hh"

#include <chrono>
#include <map>

#include "common/log.hh"

namespace cachet::invalidate {

namespace log = common::log;

void SpoolWriter::start() { thread_ = std::thread([this] { run(); }); }

void SpoolWriter::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SpoolWriter::submit(Server* s, Batch batch) {
  s->spool_queued.fetch_add(1, std::memory_order_acq_rel);
  {
    std::lock_guard lock(mu_);
    queue_.emplace_back(s, std::move(batch));
  }
  cv_.notify_one();
}

size_t SpoolWriter::write_some(Server* s, std::deque<Batch>& batches) {
  std::vector<std::vector<std::string>> records;
  uint64_t bytes = s->spool.pending_bytes();
  size_t n = 0;
  for (; n < batches.size(); ++n) {
    const uint64_t size = Spool::record_size(batches[n].keys);
    if (bytes + size > max_bytes_) break;
    bytes += size;
    records.push_back(batches[n].keys);
  }
  const bool full = n < batches.size();
  if (full && s->stats.spool_full.get() == 0)
    log::error("{}: spool {} is full ({} bytes, spool.max_bytes {}): no position is confirmed "
               "to PostgreSQL until the server answers and its spool drains",
               s->label(), s->spool.path(), s->spool.pending_bytes(), max_bytes_);
  s->stats.spool_full.set(full ? 1 : 0);
  if (records.empty()) return 0;
  std::string error;
  if (!s->spool.append(records, &error)) {
    log::error("{}: {}; the deletes wait in memory and are retried", s->label(), error);
    return 0;
  }
  uint64_t keys = 0;
  for (size_t i = 0; i < n; ++i) {
    keys += batches[i].keys.size();
    s->settle(batches[i].end_pos);
  }
  s->spool_queued.fetch_sub(n, std::memory_order_acq_rel);
  s->stats.spooled.add(keys);
  s->stats.spool_bytes.set(s->spool.pending_bytes());
  s->stats.spool_deletes.set(s->spool.pending_deletes());
  return n;
}

void SpoolWriter::run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    std::deque<std::pair<Server*, Batch>> work;
    work.swap(queue_);
    lock.unlock();
    // Per server, in order; servers are independent of each other.
    std::map<Server*, std::deque<Batch>> by_server;
    std::vector<Server*> order;
    for (auto& [s, b] : work) {
      if (!by_server.count(s)) order.push_back(s);
      by_server[s].push_back(std::move(b));
    }
    bool blocked = false;
    std::deque<std::pair<Server*, Batch>> left;
    for (Server* s : order) {
      std::deque<Batch>& batches = by_server[s];
      const size_t done = write_some(s, batches);
      for (size_t i = done; i < batches.size(); ++i) left.emplace_back(s, std::move(batches[i]));
      blocked |= done < batches.size();
    }
    tracker_->advance();
    lock.lock();
    // What could not be written goes back in front of anything queued since.
    for (auto it = left.rbegin(); it != left.rend(); ++it) queue_.push_front(std::move(*it));
    if (blocked) cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stop_; });
  }
}

}  // namespace cachet::invalidate
