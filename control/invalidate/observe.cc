// Metrics and status. Per-server metrics are labelled pool="..",server="host:port"; per-rule
// ones table="schema.table".
#include "control/invalidate/observe.hh"

#include <unistd.h>

#include <fmt/format.h>

#include "control/invalidate/pgoutput.hh"
#include "control/metrics.hh"

namespace cachet::invalidate {

namespace {

using json = nlohmann::json;

// X(member, metric suffix, type, help) for ServerStats.
#define CACHET_INVALIDATE_SERVER_METRICS(X)                                                       \
  X(up, "server_up", "gauge", "1 while the server is connected and answering.")                   \
  X(deletes_sent, "deletes_sent_total", "counter", "Delete requests written to the server.")      \
  X(packets, "packets_total", "counter", "Packets (batches, one write each) sent to the server.") \
  X(failures, "server_failures_total", "counter", "Times the server was marked down.")            \
  X(spooled, "spooled_deletes_total", "counter", "Deletes written to the server's spool.")         \
  X(replayed, "replayed_deletes_total", "counter", "Spooled deletes the server acknowledged.")     \
  X(spool_bytes, "spool_bytes", "gauge", "Bytes waiting in the server's spool.")                  \
  X(spool_deletes, "spool_deletes", "gauge", "Deletes waiting in the server's spool.")            \
  X(spool_full, "spool_full", "gauge", "1 while the spool is at spool.max_bytes (nothing is "     \
    "confirmed then).")                                                                           \
  X(holdoff_refused, "holdoff_refused_total", "counter",                                          \
    "Times the server refused `delete <key> <seconds>` (it gets plain deletes).")

const std::string kPrefix = "cachet_invalidate_";

}  // namespace

uint64_t View::lag_bytes() const {
  const uint64_t end = stats->wal_end.get(), done = stats->confirmed_lsn.get();
  return end > done ? end - done : 0;
}

double View::lag_seconds() const {
  if (!oldest_commit_us || now_unix_us <= oldest_commit_us) return 0;
  return static_cast<double>(now_unix_us - oldest_commit_us) / 1e6;
}

std::string format_metrics(const View& v) {
  control::MetricsWriter w;
  const Stats& s = *v.stats;
#define CACHET_X(m, name, type, help) w.sample(kPrefix + name, type, help, "", s.m.get());
  CACHET_INVALIDATE_STATS(CACHET_X)
#undef CACHET_X
  w.sample(kPrefix + "source_up", "gauge", "1 while the replication stream runs.", "",
           s.source_up.get());
  w.sample(kPrefix + "received_lsn", "gauge", "End of the last replication message read.", "",
           s.received_lsn.get());
  w.sample(kPrefix + "confirmed_lsn", "gauge",
           "Slot position whose transactions are all delivered (or spooled).", "",
           s.confirmed_lsn.get());
  w.sample(kPrefix + "lag_bytes", "gauge",
           "WAL bytes between the server's end and the confirmed position.", "", v.lag_bytes());
  w.sample(kPrefix + "lag_seconds", "gauge",
           "Age of the oldest committed transaction not yet delivered (0 when none).", "",
           v.lag_seconds());
  w.sample(kPrefix + "inflight_units", "gauge", "Units read and not yet settled.", "",
           v.inflight);
  w.sample(kPrefix + "inflight_limit", "gauge", "pipeline.max_inflight.", "",
           v.config->pipeline_max_inflight);
  const std::string bh = "Deletes per packet.";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < Stats::kBatchBuckets.size(); ++i) {
    cumulative += s.batch_hist[i].get();
    w.sample(kPrefix + "batch_size_bucket", "histogram", bh,
             fmt::format("le=\"{}\"", Stats::kBatchBuckets[i]), cumulative);
  }
  cumulative += s.batch_hist.back().get();
  w.sample(kPrefix + "batch_size_bucket", "histogram", bh, "le=\"+Inf\"", cumulative);
  w.sample(kPrefix + "batch_size_sum", "histogram", bh, "", s.batch_sum.get());
  w.sample(kPrefix + "batch_size_count", "histogram", bh, "", s.batch_count.get());
  for (size_t r = 0; r < v.rules->rules.size(); ++r) {
    const RuleStats& rs = (*v.rule_stats)[r];
    const std::string l = fmt::format("table=\"{}\"", v.rules->rules[r].qualified());
    w.sample(kPrefix + "rows_total", "counter", "Row changes of the table decoded.", l,
             rs.rows.get());
    w.sample(kPrefix + "rule_keys_total", "counter", "Keys the table's templates produced.", l,
             rs.keys.get());
    w.sample(kPrefix + "keys_unresolved_total", "counter",
             "Keys that could not be named: a column the template needs was not sent "
             "(replica identity too narrow).", l, rs.unresolved.get());
    w.sample(kPrefix + "truncates_total", "counter",
             "TRUNCATEs of the table (their keys cannot be named).", l, rs.truncates.get());
  }
  for (const Pool& p : *v.pools)
    for (const auto& srv : p.servers) {
      const ServerStats& ss = srv->stats;
      const std::string l =
          fmt::format("pool=\"{}\",server=\"{}\"", p.name, srv->spec.address());
#define CACHET_X(m, name, type, help) w.sample(kPrefix + name, type, help, l, ss.m.get());
      CACHET_INVALIDATE_SERVER_METRICS(CACHET_X)
#undef CACHET_X
      const std::string ah = "Delete answers by result.";
      w.sample(kPrefix + "acks_total", "counter", ah, l + ",result=\"deleted\"", ss.deleted.get());
      w.sample(kPrefix + "acks_total", "counter", ah, l + ",result=\"not_found\"",
               ss.not_found.get());
    }
  w.sample(kPrefix + "config_problems", "gauge",
           "Rule problems found in the database's catalog (missing table or column).", "",
           v.source.problems.size());
  w.sample(kPrefix + "uptime_seconds", "gauge", "Seconds since the daemon started.", "",
           v.uptime_s);
  return w.take();
}

json status_json(const View& v) {
  const Stats& s = *v.stats;
  json source = {{"state", v.source.state},
                 {"error", v.source.error},
                 {"slot", v.config->source_slot},
                 {"publication", v.config->source_publication},
                 {"received_lsn", pg::format_lsn(s.received_lsn.get())},
                 {"confirmed_lsn", pg::format_lsn(s.confirmed_lsn.get())},
                 {"reported_lsn", pg::format_lsn(v.source.reported_lsn)},
                 {"wal_end", pg::format_lsn(s.wal_end.get())},
                 {"lag_bytes", v.lag_bytes()},
                 {"lag_seconds", v.lag_seconds()},
                 {"problems", v.source.problems},
                 {"warnings", v.source.warnings}};
  json pipeline = {{"commits", s.commits.get()},
                   {"keys", s.keys.get()},
                   {"keys_rejected", s.keys_rejected.get()},
                   {"messages_rejected", s.messages_rejected.get()},
                   {"merged", s.merged.get()},
                   {"redelivered_deletes", s.redelivered.get()},
                   {"inflight", v.inflight},
                   {"max_inflight", v.config->pipeline_max_inflight},
                   {"deletes_per_packet", s.batch_count.get()
                                              ? static_cast<double>(s.batch_sum.get()) /
                                                    static_cast<double>(s.batch_count.get())
                                              : 0.0}};
  json pools = json::array();
  size_t i = 0;
  for (const Pool& p : *v.pools) {
    json servers = json::array();
    for (const auto& srv : p.servers) {
      const ServerStats& ss = srv->stats;
      const ServerView& sv = i < v.servers.size() ? v.servers[i] : ServerView{};
      ++i;
      servers.push_back({{"address", srv->spec.address()},
                         {"state", sv.state},
                         {"last_error", sv.last_error},
                         {"deletes_sent", ss.deletes_sent.get()},
                         {"deleted", ss.deleted.get()},
                         {"not_found", ss.not_found.get()},
                         {"packets", ss.packets.get()},
                         {"failures", ss.failures.get()},
                         {"spool_deletes", ss.spool_deletes.get()},
                         {"spool_bytes", ss.spool_bytes.get()},
                         {"spool_full", ss.spool_full.get() != 0},
                         {"replayed", ss.replayed.get()},
                         {"holdoff_refused", ss.holdoff_refused.get() != 0}});
    }
    pools.push_back({{"name", p.name}, {"router", p.router}, {"servers", servers}});
  }
  json auditor = {{"sample_rate", v.config->auditor_sample_rate},
                  {"samples", s.audit_samples.get()},
                  {"checked", s.audit_checked.get()},
                  {"misses", s.audit_misses.get()},
                  {"skipped", s.audit_skipped.get()}};
  return {{"pid", getpid()},
          {"uptime_s", static_cast<int64_t>(v.uptime_s)},
          {"config", v.origin},
          {"metrics", v.metrics_url},
          {"source", source},
          {"pipeline", pipeline},
          {"pools", pools},
          {"auditor", auditor}};
}

}  // namespace cachet::invalidate
