// The pipeline, a tbb::flow::graph in its own task_arena of pipeline.threads workers:
//
//   source thread ──raw batches──► decode (serial) ──units──► map (parallel) ──► order
//   (sequencer: stream order again) ──► dispatch (serial: queue each key's delete on its server
//   in every pool, register the unit with the tracker, wake the I/O thread)
//
// The send stage is the I/O thread (sender.hh): network waits do not belong in TBB tasks.
// Back-pressure is the tracker's in-flight budget, which the source checks before it reads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "control/invalidate/decoder.hh"
#include "control/invalidate/destination.hh"
#include "control/invalidate/mapper.hh"
#include "control/invalidate/tracker.hh"

namespace cachet::invalidate {

class Sender;

// pgoutput messages as read, in order: message i is data[ends[i-1], ends[i]).
struct RawBatch {
  std::string data;
  std::vector<uint32_t> ends;
  bool reset = false;  // not messages: the stream restarted, forget its state
};
using RawPtr = std::shared_ptr<RawBatch>;

class Pipeline {
 public:
  Pipeline(const Config& config, std::shared_ptr<const RuleSet> rules,
           std::vector<PoolRoute> routes, std::vector<Pool>* pools, Tracker* tracker,
           Sender* sender, Stats* stats, std::vector<RuleStats>* rule_stats);
  ~Pipeline();
  // Source thread: messages in stream order.
  void submit(RawPtr batch);
  // Source thread: the stream restarts; the decoder forgets relations and the open transaction
  // after the batches already submitted.
  void reset_decoder();
  // True (with *error, once) when the decoder met a malformed message.
  bool decode_failed(std::string* error);
  // Waits until every submitted batch went through dispatch.
  void wait_idle();

 private:
  using DecodeNode = tbb::flow::multifunction_node<RawPtr, std::tuple<UnitPtr>>;
  void decode(const RawPtr& batch, DecodeNode::output_ports_type& out);
  void dispatch(const UnitPtr& unit);

  const Config& config_;
  std::vector<Pool>* pools_;
  Tracker* tracker_;
  Sender* sender_;
  Stats* stats_;
  Decoder decoder_;
  Mapper mapper_;
  std::mutex error_mu_;
  std::string decode_error_;
  std::atomic<bool> failed_{false};

  // TBB's default worker pool is one thread short of the cores; allow the arena its workers.
  tbb::global_control workers_;
  tbb::task_arena arena_;
  std::unique_ptr<tbb::flow::graph> graph_;
  std::unique_ptr<DecodeNode> decode_node_;
  std::unique_ptr<tbb::flow::function_node<UnitPtr, UnitPtr>> map_node_;
  std::unique_ptr<tbb::flow::sequencer_node<UnitPtr>> order_node_;
  std::unique_ptr<tbb::flow::function_node<UnitPtr, tbb::flow::continue_msg>> dispatch_node_;
};

}  // namespace cachet::invalidate
