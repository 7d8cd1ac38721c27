// Building and feeding the flow graph.
#include "control/invalidate/pipeline.hh"

#include "common/log.hh"
#include "control/invalidate/sender.hh"

namespace cachet::invalidate {

namespace flow = tbb::flow;

Pipeline::Pipeline(const Config& config, std::shared_ptr<const RuleSet> rules,
                   std::vector<PoolRoute> routes, std::vector<Pool>* pools, Tracker* tracker,
                   Sender* sender, Stats* stats, std::vector<RuleStats>* rule_stats)
    : config_(config),
      pools_(pools),
      tracker_(tracker),
      sender_(sender),
      stats_(stats),
      decoder_(rules, config.source_message_prefix,
               static_cast<uint64_t>(config.pipeline_unit_rows), stats, rule_stats),
      mapper_(rules, std::move(routes), stats, rule_stats),
      workers_(tbb::global_control::max_allowed_parallelism,
               static_cast<size_t>(config.pipeline_threads) + 1),
      arena_(static_cast<int>(config.pipeline_threads), 0) {
  // The graph belongs to the arena it is built in: its tasks run on that arena's workers.
  arena_.execute([&] {
    graph_ = std::make_unique<flow::graph>();
    decode_node_ = std::make_unique<DecodeNode>(
        *graph_, flow::serial,
        [this](const RawPtr& b, DecodeNode::output_ports_type& out) { decode(b, out); });
    map_node_ = std::make_unique<flow::function_node<UnitPtr, UnitPtr>>(
        *graph_, static_cast<size_t>(config.pipeline_threads), [this](UnitPtr u) {
          mapper_.map(*u);
          return u;
        });
    order_node_ = std::make_unique<flow::sequencer_node<UnitPtr>>(
        *graph_, [](const UnitPtr& u) { return static_cast<size_t>(u->seq); });
    dispatch_node_ = std::make_unique<flow::function_node<UnitPtr, flow::continue_msg>>(
        *graph_, flow::serial, [this](const UnitPtr& u) {
          dispatch(u);
          return flow::continue_msg();
        });
    flow::make_edge(flow::output_port<0>(*decode_node_), *map_node_);
    flow::make_edge(*map_node_, *order_node_);
    flow::make_edge(*order_node_, *dispatch_node_);
  });
}

Pipeline::~Pipeline() { wait_idle(); }

void Pipeline::submit(RawPtr batch) { decode_node_->try_put(std::move(batch)); }

void Pipeline::reset_decoder() {
  auto b = std::make_shared<RawBatch>();
  b->reset = true;
  decode_node_->try_put(std::move(b));
}

bool Pipeline::decode_failed(std::string* error) {
  if (!failed_.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(error_mu_);
  *error = decode_error_;
  failed_ = false;
  return true;
}

void Pipeline::wait_idle() {
  arena_.execute([&] { graph_->wait_for_all(); });
}

void Pipeline::decode(const RawPtr& b, DecodeNode::output_ports_type& out) {
  if (b->reset) {
    decoder_.reset();
    return;
  }
  std::vector<UnitPtr> units;
  uint32_t begin = 0;
  for (uint32_t end : b->ends) {
    std::string error;
    if (!decoder_.feed(std::string_view(b->data).substr(begin, end - begin), &units, &error)) {
      std::lock_guard lock(error_mu_);
      if (!failed_) {
        decode_error_ = error;
        failed_ = true;
      }
    }
    begin = end;
  }
  for (UnitPtr& u : units) std::get<0>(out).try_put(std::move(u));
}

void Pipeline::dispatch(const UnitPtr& u) {
  const size_t max_keys = static_cast<size_t>(config_.batch_max_keys);
  std::vector<std::pair<Server*, uint64_t>> reqs;
  bool wake = false;
  for (size_t p = 0; p < pools_->size(); ++p) {
    Pool& pool = (*pools_)[p];
    for (size_t i = 0; i < u->keys.size(); ++i) {
      Server* s = pool.servers[u->targets[p][i]].get();
      bool first = false, full = false;
      const uint64_t pos = s->enqueue(u->keys[i], max_keys, &first, &full, &stats_->merged);
      wake |= first || full;
      // One requirement per server: the last (highest) position of this unit there.
      if (!reqs.empty() && reqs.back().first == s) reqs.back().second = pos;
      else {
        bool found = false;
        for (auto& [srv, req] : reqs)
          if (srv == s) {
            req = pos;
            found = true;
          }
        if (!found) reqs.emplace_back(s, pos);
      }
    }
  }
  if (tracker_->is_redelivery(u->end_lsn))
    stats_->redelivered.add(u->keys.size() * pools_->size());
  tracker_->add(u->seq, u->end_lsn, u->commit_time_us, std::move(reqs));
  if (wake) sender_->wake();
}

}  // namespace cachet::invalidate
