// The daemon's threads and its operator endpoints. Requests are small and answered at once
// (each read bounded by 1 s), so one poll loop serves both sockets.
#include "control/invalidate/daemon.hh"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/log.hh"
#include "control/launch.hh"
#include "control/metrics.hh"
#include "control/net.hh"
#include "control/process.hh"

namespace cachet::invalidate {

namespace log = common::log;
using json = nlohmann::json;

namespace {
constexpr int kRequestTimeoutMs = 1000;
constexpr int kDrainMs = 2000;

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}
}  // namespace

Daemon::Daemon(Config config, std::string origin)
    : config_(std::move(config)), origin_(std::move(origin)), started_ms_(control::now_ms()) {
  socket_path_ = config_.control_socket.empty() ? control::runtime_socket_path("invalidate.sock")
                                                : config_.control_socket;
}

Daemon::~Daemon() {
  shutdown();
  for (int fd : {control_fd_, metrics_fd_, signal_fd_})
    if (fd >= 0) ::close(fd);
}

bool Daemon::start(std::string* error) {
  rules_ = compile_rules(config_.rules);
  rule_stats_ = std::vector<RuleStats>(config_.rules.size());
  std::vector<PoolRoute> routes;
  if (!make_pools(config_, &pools_, &routes, error)) return false;
  if (!control::make_dirs(dir_of(socket_path_), error)) return false;
  control_fd_ = control::listen_unix(socket_path_, error);
  if (control_fd_ < 0) return false;
  if (config_.metrics_port > 0) {
    std::string why;
    metrics_fd_ = control::listen_loopback_tcp(static_cast<uint16_t>(config_.metrics_port), &why);
    if (metrics_fd_ < 0) log::error("metrics off: {}", why);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

  tracker_ = std::make_unique<Tracker>(static_cast<uint64_t>(config_.pipeline_max_inflight),
                                       &stats_);
  writer_ = std::make_unique<SpoolWriter>(static_cast<uint64_t>(config_.spool_max_bytes),
                                          tracker_.get());
  auditor_ = std::make_unique<Auditor>(config_.auditor_sample_rate, config_.auditor_delay_ms,
                                       &pools_, &stats_);
  sender_ = std::make_unique<Sender>(config_, &pools_, tracker_.get(), writer_.get(),
                                     auditor_.get(), &stats_);
  pipeline_ = std::make_unique<Pipeline>(config_, rules_, std::move(routes), &pools_,
                                         tracker_.get(), sender_.get(), &stats_, &rule_stats_);
  source_ = std::make_unique<Source>(config_, pipeline_.get(), tracker_.get(), &stats_);
  writer_->start();
  auditor_->start();
  if (!sender_->start(error)) return false;
  source_->start();
  size_t servers = 0;
  for (const Pool& p : pools_) servers += p.servers.size();
  log::info("started: {} pools, {} servers, {} rules; control socket {}; metrics {}",
            pools_.size(), servers, config_.rules.size(), socket_path_,
            metrics_fd_ >= 0 ? fmt::format("http://127.0.0.1:{}/metrics", config_.metrics_port)
                             : std::string("off"));
  return true;
}

void Daemon::shutdown() {
  if (stopped_ || !source_) return;
  stopped_ = true;
  source_->stop(kDrainMs);
  pipeline_->wait_idle();
  auditor_->stop();
  sender_->stop();
  writer_->stop();
  ::unlink(socket_path_.c_str());
  log::info("stopped; confirmed position {}", pg::format_lsn(tracker_->confirmed_lsn()));
}

View Daemon::view() const {
  View v;
  v.config = &config_;
  v.stats = &stats_;
  v.rule_stats = &rule_stats_;
  v.rules = rules_.get();
  v.pools = &pools_;
  for (const Pool& p : pools_)
    for (const auto& s : p.servers) {
      const Sender::ServerState st = sender_->state_of(s.get());
      v.servers.push_back({st.state, st.last_error});
    }
  v.source = source_->status();
  v.inflight = tracker_->inflight();
  v.oldest_commit_us = tracker_->oldest_commit_us();
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  v.now_unix_us = static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  v.uptime_s = static_cast<double>(control::now_ms() - started_ms_) / 1000.0;
  v.origin = origin_;
  v.metrics_url = metrics_fd_ >= 0
                      ? fmt::format("http://127.0.0.1:{}/metrics", config_.metrics_port)
                      : "off";
  return v;
}

void Daemon::serve_control(int fd) {
  std::string in, err;
  const long end = control::read_until(fd, &in, "\n", control::now_ms() + kRequestTimeoutMs,
                                       false, &err);
  if (end < 0) return;
  const json req = json::parse(in.substr(0, static_cast<size_t>(end)), nullptr, false);
  const std::string cmd = req.is_object() && req.contains("cmd") && req["cmd"].is_string()
                              ? req["cmd"].get<std::string>()
                              : "";
  json reply;
  if (cmd == "ping") reply = {{"ok", true}};
  else if (cmd == "status") reply = {{"ok", true}, {"status", status_json(view())}};
  else
    reply = {{"ok", false},
             {"code", "usage"},
             {"error", cmd.empty() ? std::string("bad request: expected {\"cmd\":...}")
                                   : fmt::format("unknown command '{}' (ping, status)", cmd)}};
  control::write_all(fd, reply.dump() + "\n", control::now_ms() + kRequestTimeoutMs, &err);
}

void Daemon::serve_metrics(int fd) {
  std::string in, err;
  if (control::read_until(fd, &in, "\r\n\r\n", control::now_ms() + kRequestTimeoutMs, true,
                          &err) < 0)
    return;
  const std::string reply = control::http_reply(in, [&] { return format_metrics(view()); });
  control::write_all(fd, reply, control::now_ms() + kRequestTimeoutMs, &err);
}

int Daemon::run() {
  while (true) {
    pollfd fds[3] = {{signal_fd_, POLLIN, 0}, {control_fd_, POLLIN, 0}, {metrics_fd_, POLLIN, 0}};
    if (poll(fds, metrics_fd_ >= 0 ? 3 : 2, -1) < 0 && errno != EINTR) {
      log::error("poll: {}", std::strerror(errno));
      break;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      if (::read(signal_fd_, &si, sizeof si) == sizeof si) {
        log::info("signal {}: stopping", strsignal(static_cast<int>(si.ssi_signo)));
        break;
      }
    }
    for (int i = 1; i < 3; ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      const int c = accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c < 0) continue;
      i == 1 ? serve_control(c) : serve_metrics(c);
      ::close(c);
    }
  }
  shutdown();
  return 0;
}

}  // namespace cachet::invalidate
