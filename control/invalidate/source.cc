// The replication stream over libpq in non-blocking mode: poll() on its socket with a 10 ms
// bound, so feedback and the stop flag are served while the pipeline applies back-pressure.
#include "control/invalidate/source.hh"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "common/clock.hh"
#include "common/log.hh"
#include "control/invalidate/catalog.hh"
#include "control/invalidate/pgoutput.hh"
#include "control/invalidate/pipeline.hh"
#include "control/process.hh"

namespace cachet::invalidate {

namespace log = common::log;

namespace {

constexpr int kPollMs = 10;
constexpr int64_t kStatusEveryMs = 10000;  // well inside wal_sender_timeout (60 s)
constexpr size_t kMaxBatchMessages = 1024;

int64_t now_pg_us() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000 - pg::kEpochOffsetUs;
}

struct ConnFree {
  void operator()(PGconn* c) const { PQfinish(c); }
};

}  // namespace

uint64_t read_state_file(const std::string& spool_dir) {
  std::ifstream f(spool_dir + "/state");
  uint64_t lsn = 0;
  std::string word;
  while (f >> word)
    if (word == "delivered_lsn") f >> lsn;
  return lsn;
}

Source::Source(const Config& config, Pipeline* pipeline, Tracker* tracker, Stats* stats)
    : config_(config), pipeline_(pipeline), tracker_(tracker), stats_(stats) {
  state_path_ = config.spool_dir + "/state";
  state_fd_ = ::open(state_path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (state_fd_ < 0)
    log::warn("cannot write {}: {}; repeated deletes after a restart are not counted",
              state_path_, std::strerror(errno));
  status_.state = "connecting";
}

Source::~Source() {
  stop(0);
  if (state_fd_ >= 0) ::close(state_fd_);
}

void Source::start() { thread_ = std::thread([this] { run(); }); }

void Source::stop(int drain_ms) {
  drain_ms_ = drain_ms;
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

Source::Status Source::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void Source::set_state(const std::string& state, const std::string& error) {
  std::lock_guard lock(mu_);
  status_.state = state;
  status_.error = error;
  if (state == "streaming") status_.connected_since_ms = control::now_ms();
}

// The delivered position, for counting repeated deletes after a crash: written (not synced)
// whenever it moves, at most every 10 ms; a crash of the daemon keeps it (page cache).
void Source::write_state_file(uint64_t lsn) {
  if (state_fd_ < 0 || lsn <= state_written_) return;
  const std::string text = fmt::format("delivered_lsn {}\n# {}\n", lsn, pg::format_lsn(lsn));
  if (::pwrite(state_fd_, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()) &&
      ::ftruncate(state_fd_, static_cast<off_t>(text.size())) == 0)
    state_written_ = lsn;
}

void Source::run() {
  control::Backoff backoff(100, config_.source_retry_max_ms);
  while (!stop_) {
    set_state("connecting", status().error);
    CatalogReport report;
    std::string error;
    const int64_t began = control::now_ms();
    bool ok = prepare_catalog(config_, &report, &error);
    {
      std::lock_guard lock(mu_);
      status_.problems = report.problems;
      status_.warnings = report.warnings;
    }
    for (const std::string& p : report.problems) log::error("{}", p);
    for (const std::string& w : report.warnings) log::warn("{}", w);
    if (ok) ok = stream(&error);
    stats_->source_up.set(0);
    if (stop_) break;
    stats_->source_errors.add();
    const int64_t delay = backoff.next_delay(control::now_ms() - began, 60000);
    log::error("database: {}; retrying in {} ms", error, delay);
    set_state("waiting", error);
    // The stream restarts from the slot: the decoder forgets the old stream's state.
    pipeline_->reset_decoder();
    for (int64_t waited = 0; waited < delay && !stop_; waited += kPollMs)
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
  set_state("stopped", "");
}

bool Source::stream(std::string* error) {
  std::unique_ptr<PGconn, ConnFree> conn(connect_db(config_.source_conninfo, true));
  PGconn* c = conn.get();
  if (!c || PQstatus(c) != CONNECTION_OK) {
    *error = fmt::format("cannot open the replication connection: {}", pg_error(c));
    return false;
  }
  const std::string start = fmt::format(
      "START_REPLICATION SLOT {} LOGICAL 0/0 (proto_version '1', publication_names '\"{}\"', "
      "messages 'true')", config_.source_slot, config_.source_publication);
  PGresult* r = PQexec(c, start.c_str());
  const bool copying = PQresultStatus(r) == PGRES_COPY_BOTH;
  PQclear(r);
  if (!copying) {
    *error = fmt::format("START_REPLICATION of slot {}: {}", config_.source_slot, pg_error(c));
    return false;
  }
  PQsetnonblocking(c, 1);
  const uint64_t redelivery = read_state_file(config_.spool_dir);
  tracker_->set_redelivery_bound(redelivery);
  log::info("streaming slot {} (publication {}); deletes of transactions up to {} were sent "
            "before and count as repeated", config_.source_slot, config_.source_publication,
            pg::format_lsn(redelivery));
  set_state("streaming", "");
  stats_->source_up.set(1);

  UnitCounter counter(static_cast<uint64_t>(config_.pipeline_unit_rows));
  uint64_t written = 0, reported = 0;
  int64_t last_report_ms = 0, last_state_ms = 0;
  bool reply_requested = false;
  int64_t stop_deadline_ms = 0;
  const uint64_t max_inflight = static_cast<uint64_t>(config_.pipeline_max_inflight);

  while (true) {
    const int64_t now = control::now_ms();
    if (stop_ && !stop_deadline_ms) stop_deadline_ms = now + drain_ms_;
    const bool stopping = stop_deadline_ms != 0;
    // Feedback: the confirmed position, when it moved (at most every interval), on request,
    // and every 10 s in any case.
    const uint64_t confirmed = tracker_->confirmed_lsn();
    if (confirmed > state_written_ && now - last_state_ms >= 10) {
      write_state_file(confirmed);
      last_state_ms = now;
    }
    const bool drained = tracker_->inflight() == 0;
    if (reply_requested || now - last_report_ms >= kStatusEveryMs ||
        (confirmed > reported && now - last_report_ms >= config_.source_feedback_interval_ms) ||
        (stopping && (drained || now >= stop_deadline_ms))) {
      const std::string msg = pg::status_update(std::max(written, confirmed), confirmed,
                                                now_pg_us(), false);
      if (PQputCopyData(c, msg.data(), static_cast<int>(msg.size())) != 1 || PQflush(c) < 0) {
        *error = fmt::format("sending the confirmed position: {}", pg_error(c));
        return false;
      }
      reported = confirmed;
      last_report_ms = now;
      reply_requested = false;
      std::lock_guard lock(mu_);
      status_.reported_lsn = reported;
    }
    if (stopping && (drained || now >= stop_deadline_ms)) {
      if (!drained)
        log::warn("stopping with {} transactions not yet delivered: they are streamed again at "
                  "the next start", tracker_->inflight());
      PQputCopyEnd(c, nullptr);
      PQflush(c);
      return true;
    }
    if (pipeline_->decode_failed(error)) {
      *error = fmt::format("malformed replication message: {}", *error);
      return false;
    }
    // Back-pressure: read nothing while the in-flight budget is spent.
    if (stopping || tracker_->inflight() >= max_inflight) {
      tracker_->wait_for_room(kPollMs);
      continue;
    }
    pollfd p{PQsocket(c), POLLIN, 0};
    if (poll(&p, 1, kPollMs) < 0 && errno != EINTR) {
      *error = fmt::format("poll: {}", std::strerror(errno));
      return false;
    }
    if (!PQconsumeInput(c)) {
      *error = fmt::format("reading the stream: {}", pg_error(c));
      return false;
    }
    auto batch = std::make_shared<RawBatch>();
    uint64_t units = 0;
    const uint64_t room = max_inflight - tracker_->inflight();
    while (batch->ends.size() < kMaxBatchMessages && units < room) {
      char* buf = nullptr;
      const int n = PQgetCopyData(c, &buf, 1);
      if (n == 0) break;
      if (n < 0) {
        if (n == -1) {
          PGresult* end = PQgetResult(c);
          *error = fmt::format("the server ended the stream: {}",
                               PQresultStatus(end) == PGRES_COMMAND_OK ? "" : pg_error(c));
          PQclear(end);
        } else {
          *error = fmt::format("reading the stream: {}", pg_error(c));
        }
        return false;
      }
      pg::Frame f;
      std::string why;
      const bool parsed = pg::parse_frame(std::string_view(buf, static_cast<size_t>(n)), &f, &why);
      if (parsed) {
        if (auto* x = std::get_if<pg::XLogData>(&f)) {
          if (counter.feed(x->payload.data(), x->payload.size())) ++units;
          batch->data.append(x->payload);
          batch->ends.push_back(static_cast<uint32_t>(batch->data.size()));
          written = std::max(written, x->start);
          stats_->wal_end.set(std::max(stats_->wal_end.get(), x->wal_end));
        } else if (auto* k = std::get_if<pg::Keepalive>(&f)) {
          stats_->wal_end.set(std::max(stats_->wal_end.get(), k->wal_end));
          written = std::max(written, k->wal_end);  // the server sent everything before it
          reply_requested |= k->reply_requested;
          // Everything before the keepalive was read; with nothing in flight, its position is
          // confirmed (otherwise the slot would hold WAL of tables no rule reads).
          if (!counter.in_txn() && batch->ends.empty()) tracker_->confirm_idle(k->wal_end);
        }
      }
      PQfreemem(buf);
      if (!parsed) {
        stats_->decode_errors.add();
        *error = fmt::format("malformed replication frame: {}", why);
        return false;
      }
    }
    stats_->received_lsn.set(written);
    if (!batch->ends.empty()) {
      tracker_->reserve(units);
      pipeline_->submit(std::move(batch));
    }
  }
}

}  // namespace cachet::invalidate
