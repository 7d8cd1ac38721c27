// Server queues: the dispatch stage appends, the I/O thread takes from the front; a key already
// waiting is not queued twice (the paper's merging of duplicate deletes in one batch).
#include "control/invalidate/destination.hh"

#include <cctype>

#include <fmt/format.h>

#include "common/clock.hh"
#include "common/log.hh"
#include "control/net.hh"

namespace cachet::invalidate {

namespace {
int64_t mono_us() { return static_cast<int64_t>(common::mono_ns() / 1000); }
}  // namespace

Server::Server(size_t pool_index, std::string name, ServerSpec s, int64_t holdoff)
    : pool(pool_index), pool_name(std::move(name)), spec(std::move(s)), holdoff_s(holdoff) {}

uint64_t Server::enqueue(std::string_view key, size_t max_keys, bool* first, bool* full,
                         Counter* merged) {
  std::lock_guard lock(mu_);
  *first = queue_.empty();
  if (waiting_.count(key)) {
    merged->add();
  } else {
    if (queue_.empty()) oldest_us_ = mono_us();
    queue_.emplace_back(key);
    waiting_.insert(queue_.back());
    ++enq_pos_;
  }
  *full = queue_.size() >= max_keys;
  return enq_pos_;
}

bool Server::take(size_t max, Batch* out) {
  std::lock_guard lock(mu_);
  if (queue_.empty()) return false;
  out->keys.clear();
  out->replay = false;
  const size_t n = std::min(max, queue_.size());
  out->keys.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    waiting_.erase(queue_.front());
    out->keys.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  head_pos_ += n;  // the queue holds positions [head_pos_, enq_pos_)
  out->end_pos = head_pos_;
  oldest_us_ = queue_.empty() ? 0 : mono_us();
  return true;
}

size_t Server::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

int64_t Server::oldest_us() const {
  std::lock_guard lock(mu_);
  return oldest_us_;
}

void Server::settle(uint64_t end_pos) {
  uint64_t cur = settled_.load(std::memory_order_relaxed);
  while (cur < end_pos &&
         !settled_.compare_exchange_weak(cur, end_pos, std::memory_order_acq_rel)) {
  }
}

std::string spool_path(const std::string& dir, const std::string& pool, const ServerSpec& s) {
  std::string host;
  for (char c : s.host) host += (std::isalnum(static_cast<unsigned char>(c)) || c == '.') ? c : '_';
  return fmt::format("{}/{}-{}-{}.spool", dir, pool, host, s.port);
}

bool make_pools(const Config& config, std::vector<Pool>* pools, std::vector<PoolRoute>* routes,
                std::string* error) {
  if (!control::make_dirs(config.spool_dir, error)) return false;
  for (size_t p = 0; p < config.pools.size(); ++p) {
    const PoolConfig& pc = config.pools[p];
    Pool pool;
    pool.name = pc.name;
    pool.router = !pc.router.empty();
    PoolRoute route;
    route.router = pool.router;
    parse_key_hash(pc.hash, &route.hash);
    std::vector<ServerSpec> specs;
    if (pool.router) {
      ServerSpec s;
      parse_host_port(pc.router, &s.host, &s.port, error);
      s.name = s.address();
      specs.push_back(s);
    } else {
      for (const std::string& text : pc.servers) {
        ServerSpec s;
        parse_server_spec(text, &s, error);  // checked when the config was read
        specs.push_back(s);
      }
      route.ring = KetamaRing(specs);
      route.single = specs.size() == 1;
    }
    for (const ServerSpec& s : specs) {
      auto server = std::make_unique<Server>(p, pc.name, s, pc.holdoff_s);
      if (!server->spool.open(spool_path(config.spool_dir, pc.name, s), error)) return false;
      server->stats.spool_bytes.set(server->spool.pending_bytes());
      server->stats.spool_deletes.set(server->spool.pending_deletes());
      if (server->spool.pending_deletes() > 0)
        common::log::warn("{}: {} deletes wait in the spool from an earlier run; they are "
                          "replayed when the server answers", server->label(),
                          server->spool.pending_deletes());
      pool.servers.push_back(std::move(server));
    }
    pools->push_back(std::move(pool));
    routes->push_back(std::move(route));
  }
  return true;
}

}  // namespace cachet::invalidate
