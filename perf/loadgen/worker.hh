// One cachet-load worker thread: its connections, the preload and measured phases, request
// issue, reply matching and counting. Workers share only the Shared block below.
#pragma once

#include <atomic>
#include <barrier>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/byte_buf.hh"
#include "common/clock.hh"
#include "perf/loadgen/histogram.hh"
#include "perf/loadgen/options.hh"
#include "perf/loadgen/reply_parser.hh"
#include "perf/loadgen/transport.hh"
#include "perf/loadgen/workload.hh"

namespace cachet::perf {

// Counters of one worker (or of all, merged). "Measured" counters cover requests sent after
// the warmup and answered inside the measured window; error counters cover the whole run.
struct Stats {
  uint64_t requests = 0;  // measured requests answered
  uint64_t key_ops = 0;   // keys in them: a multiget of K keys is K key ops (the headline rate)
  uint64_t gets = 0, get_keys = 0, hits = 0, misses = 0, sets = 0;
  uint64_t preload_sets = 0;
  uint64_t protocol_errors = 0;         // unparseable or unasked-for replies (connection dropped)
  uint64_t server_errors = 0;           // well-formed ERROR/CLIENT_ERROR/SERVER_ERROR/NOT_STORED
  uint64_t value_errors = 0;            // hits whose length differs from what the preload stored
  uint64_t conn_errors = 0;             // connections closed or failed under us
  uint64_t timeouts = 0;                // UDP requests never (fully) answered
  uint64_t frame_errors = 0;            // DPDK: bad frames from the server, unsendable requests
  uint64_t tx_packets = 0, rx_packets = 0;  // DPDK: frames inside the measured window
  uint64_t polls = 0, empty_polls = 0;  // event-loop turns, and those that found nothing
  uint64_t idle_ns = 0;  // in the window: time in loop turns whose poll delivered nothing
  uint64_t cpu_ns = 0;                  // CPU time the workers used inside the measured window
  uint64_t measured_end_ns = 0;         // when this worker stopped counting
  bool preload_incomplete = false;
  bool setup_failed = false;  // could not connect
  bool timeouts_are_errors = false;  // DPDK: nothing on the link may drop, so a loss is an error
  // --server-stats: end - start of the server's integer `stats` over the measured window.
  std::map<std::string, int64_t> server_stats;
  std::map<std::string, int64_t> server_stats_end;  // the values at the window's end
  // --server-stats: the server's counters per second while no load ran (before the preload),
  // e.g. how many empty polls an idle DPDK lcore makes; 0 s when not measured.
  std::map<std::string, double> server_idle_rate;
  std::string first_error;
  Histogram lat, lat_get, lat_set;  // nanoseconds, measured requests only

  void merge(const Stats& o);
  uint64_t errors() const {
    return protocol_errors + server_errors + value_errors + conn_errors + frame_errors +
           (timeouts_are_errors ? timeouts : 0);
  }
};

// Stamps the time at the end of each barrier phase: [0] all connected, [1] all preloaded
// (the warmup, then the measured window, starts there). Runs on one thread per phase.
struct StampClock {
  uint64_t* stamps;
  void operator()() noexcept {
    if (stamps[0] == 0)
      stamps[0] = common::mono_ns();
    else
      stamps[1] = common::mono_ns();
  }
};

struct Shared {
  Shared(const Options& o, const Workload& w, unsigned threads)
      : opt(o), wl(w), barrier(threads, StampClock{stamps}) {}
  const Options& opt;
  const Workload& wl;
  uint64_t stamps[2] = {0, 0};  // read after the barrier phase that wrote them
  std::barrier<StampClock> barrier;
  std::atomic<bool> abort{false};  // a worker could not start or preload; everyone stops
  // Makes worker i's transport; empty: the kernel transport of --io.
  std::function<std::unique_ptr<Transport>(unsigned)> make_transport;
};

class Worker final : public TransportHandler {
 public:
  // Owns nconns connections; preloads keys [key_lo, key_hi); issues at most quota measured
  // requests (0 = no limit).
  Worker(unsigned index, Shared& sh, unsigned nconns, uint32_t key_lo, uint32_t key_hi,
         uint64_t quota);
  // The thread body: connect, preload, wait for all workers, warm up, measure. Always
  // returns within the configured bounds.
  void run();
  const Stats& stats() const { return st_; }

  void on_recv(uint32_t conn, std::string_view bytes) override;
  void on_closed(uint32_t conn, int err) override;
  void on_rx_time(uint64_t ns) override { rx_now_ = ns; }

 private:
  enum class Phase { preload, run };
  struct InFlight {
    uint64_t sent_ns;
    ReplyKind kind;
    bool done;  // datagram replies may finish out of order
    uint16_t nkeys;
    uint16_t req_id;
  };
  struct Conn {
    explicit Conn(const ReplyParser& p) : parser(p) {}
    bool alive = true;
    bool parsing = false;  // parser holds the head request's partial reply
    uint32_t head = 0, count = 0;
    uint16_t next_id = 0;
    uint16_t udp_id = 0, udp_seq = 0;  // datagram reply being reassembled
    bool udp_active = false;
    std::vector<InFlight> ring;  // capacity depth_
    std::vector<uint32_t> keys;  // ring slot s uses keys[s*multiget ..]
    common::ByteBuf rx;          // stream bytes not yet parsed, or a datagram reply so far
    ReplyParser parser;
  };

  void run_phase(Phase phase, uint64_t deadline);
  bool phase_done() const;
  void fill(uint32_t c, uint64_t now);
  void on_stream(uint32_t c, std::string_view bytes, uint64_t now);
  void on_datagram(uint32_t c, std::string_view bytes, uint64_t now);
  // Accounts the reply of the head (stream) or given (datagram) request; pops done requests.
  void finish(Conn& conn, uint32_t slot, uint64_t now);
  void expire(uint64_t now);
  void mark_window(bool start);
  // Drops connection c (its stream can no longer be trusted), counting one error in counter.
  void kill(uint32_t c, const std::string& why, uint64_t& counter);
  void note_error(const std::string& what);
  // --server-stats (worker 0): a `stats` request on an extra connection at each window edge
  // (edges 0, 1) and around an idle pause before the preload (edges 2, 3).
  void send_probe(int edge);
  void on_probe(std::string_view d);
  // Sends the probe and polls until its reply (or timeout_ns); true when it came.
  bool probe_sync(int edge, uint64_t timeout_ns);
  void measure_server_idle();

  unsigned index_;
  Shared& sh_;
  const Options& opt_;
  const Workload& wl_;
  std::unique_ptr<Transport> tr_;
  std::vector<Conn> conns_;
  unsigned live_ = 0;
  unsigned depth_;
  Rng rng_;
  common::ByteBuf scratch_;
  Phase phase_ = Phase::preload;
  uint32_t preload_next_, preload_end_;
  uint64_t quota_, issued_measured_ = 0, in_flight_ = 0;
  uint64_t warm_end_ = 0, end_ = UINT64_MAX, last_done_ = 0, cpu_at_start_ = 0;
  LinkCounters link_at_start_;
  uint64_t rx_now_ = 0;  // arrival time of the burst being delivered (0: read the clock)
  uint32_t probe_conn_ = UINT32_MAX;  // the stats connection, when worker 0 probes
  int probe_edge_ = -1;               // edge whose reply is being collected, -1: none
  bool probe_done_[4] = {false, false, false, false};
  uint64_t probe_ns_[4] = {0, 0, 0, 0};  // when each reply arrived
  common::ByteBuf probe_rx_;
  std::map<std::string, int64_t> probe_at_[4];
  Stats st_;
};

}  // namespace cachet::perf
