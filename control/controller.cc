// The poll loop: signals (signalfd), cachetd's output, CLI clients (one JSON request line per
// connection) and metrics scrapes (HTTP/1.0, one request per connection).
#include "control/controller.hh"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "common/log.hh"
#include "control/metrics.hh"
#include "control/net.hh"

namespace cachet::control {

namespace {
constexpr size_t kMaxRequest = 64 * 1024;
constexpr int kClientTimeoutMs = 10000;
}  // namespace

Controller::Controller(Config config, std::vector<std::string> overrides,
                       std::string config_origin)
    : config_(std::move(config)),
      overrides_(std::move(overrides)),
      origin_(std::move(config_origin)),
      started_ms_(now_ms()),
      backoff_(config_.supervisor_backoff_initial_ms, config_.supervisor_backoff_max_ms) {
  socket_path_ = config_.control_socket.empty() ? default_socket_path() : config_.control_socket;
  // `-- -vv` sets the verbosity that restarts and upgrades keep.
  if (int v = override_verbosity(overrides_); v > 0) config_.dataplane_tunables.verbosity = std::min(v, 3);
  common::log::set_level(config_.control_log_level);
}

Controller::~Controller() {
  for (Client& c : clients_)
    if (c.fd >= 0) close(c.fd);
  for (int fd : {signal_fd_, api_fd_, metrics_fd_})
    if (fd >= 0) close(fd);
}

bool Controller::open_sockets(std::string* error) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGCHLD}) sigaddset(&set, s);
  signal_fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) {
    *error = fmt::format("signalfd: {}", std::strerror(errno));
    return false;
  }
  // cachetd's admin sockets are named <socket>.cachetd.<n>(.takeover): keep room for that.
  if (socket_path_.size() + 24 > 107) {
    *error = fmt::format("control socket path {} is too long ({} bytes; at most 83, so that "
                         "the admin sockets named after it fit in a unix socket address)",
                         socket_path_, socket_path_.size());
    return false;
  }
  std::string dir = socket_path_.substr(0, socket_path_.rfind('/'));
  if (socket_path_.find('/') != std::string::npos && !make_dirs(dir, error)) return false;
  api_fd_ = listen_unix(socket_path_, error);
  if (api_fd_ < 0) return false;
  std::string merr;
  if (!set_metrics_port(config_.metrics_port, &merr))
    common::log::error("metrics: {}; metrics are off until `cachetctl config set metrics.port`", merr);
  return true;
}

bool Controller::set_metrics_port(int64_t port, std::string* error) {
  int fd = -1;
  if (port != 0) {
    fd = listen_loopback_tcp(static_cast<uint16_t>(port), error);
    if (fd < 0) return false;
  }
  if (metrics_fd_ >= 0) close(metrics_fd_);
  metrics_fd_ = fd;
  metrics_port_ = static_cast<int>(port);
  if (fd >= 0) common::log::info("metrics on http://127.0.0.1:{}/metrics", port);
  return true;
}

int Controller::run() {
  std::string error;
  if (!open_sockets(&error)) {
    common::log::error("{}", error);
    return 1;
  }
  common::log::info("control socket {} (config: {})", socket_path_, origin_);
  clear_leftovers();
  if (!start_dataplane(&error)) {
    common::log::error("cannot start cachetd: {}", error);
    unlink(socket_path_.c_str());
    return 1;
  }
  loop();
  unlink(socket_path_.c_str());
  unlink((socket_path_ + ".cachetd").c_str());
  common::log::info("stopped");
  return exit_status_;
}

void Controller::loop() {
  std::vector<pollfd> pfds;
  std::vector<Proc*> procs;
  while (!done_) {
    pfds.clear();
    procs.clear();
    pfds.push_back({signal_fd_, POLLIN, 0});
    pfds.push_back({api_fd_, POLLIN, 0});
    pfds.push_back({metrics_fd_, POLLIN, 0});  // -1 is ignored by poll
    if (cur_) procs.push_back(cur_.get());
    if (upgrade_.next) procs.push_back(upgrade_.next.get());
    for (auto& p : exiting_) procs.push_back(p.get());
    for (Proc* p : procs) pfds.push_back({p->out_fd, POLLIN, 0});
    const size_t first_client = pfds.size();
    for (Client& c : clients_) pfds.push_back({c.fd, POLLIN, 0});

    int64_t wait = next_deadline() - now_ms();
    if (wait < 0) wait = 0;
    if (wait > 1000) wait = 1000;
    int r = poll(pfds.data(), pfds.size(), static_cast<int>(wait));
    if (r < 0 && errno != EINTR) {
      common::log::error("poll: {}", std::strerror(errno));
      begin_shutdown(false, 1);
    }
    if (r > 0) {
      // Output first: reaping (on_signal) may destroy the Procs `procs` points to.
      for (size_t i = 0; i < procs.size(); ++i)
        if (pfds[3 + i].revents) drain_output(*procs[i]);
      const size_t n_clients = clients_.size();  // accept() below may append
      for (size_t i = 0; i < n_clients; ++i)
        if (pfds[first_client + i].revents && clients_[i].fd >= 0) serve_client(clients_[i]);
      if (pfds[1].revents) accept_clients(api_fd_, false);
      if (pfds[2].revents && metrics_fd_ >= 0) accept_clients(metrics_fd_, true);
      if (pfds[0].revents) on_signal();
    }
    const int64_t now = now_ms();
    for (Client& c : clients_)
      if (c.fd >= 0 && now > c.deadline_ms) {
        close(c.fd);
        c.fd = -1;
      }
    std::erase_if(clients_, [](const Client& c) { return c.fd < 0; });
    tick();
  }
}

void Controller::on_signal() {
  signalfd_siginfo si;
  while (read(signal_fd_, &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGCHLD) {
      reap_children();
    } else if (state_ != State::stopping) {
      common::log::info("{}: stopping cachetd and exiting", strsignal(static_cast<int>(si.ssi_signo)));
      begin_shutdown(false, 0);
    }
  }
}

void Controller::drain_output(Proc& p) {
  char buf[8192];
  while (p.out_fd >= 0) {
    ssize_t n = read(p.out_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        if (!p.out_partial.empty()) p.out_partial += '\n';
        n = 0;
      } else {
        return;
      }
    }
    p.out_partial.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = p.out_partial.find('\n')) != std::string::npos) {
      std::string line = p.out_partial.substr(0, nl);
      p.out_partial.erase(0, nl + 1);
      common::log::write(common::log::Level::info, fmt::format("cachetd[{}]: {}", p.pid, line));
      p.tail += line + "\n";
      if (p.tail.size() > 4096) p.tail.erase(0, p.tail.size() - 4096);
    }
    if (n == 0) {  // EOF: the process is gone or closed its output
      close(p.out_fd);
      p.out_fd = -1;
    }
  }
}

void Controller::accept_clients(int listen_fd, bool http) {
  while (true) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    clients_.push_back(Client{fd, {}, now_ms() + kClientTimeoutMs, http});
  }
}

void Controller::serve_client(Client& c) {
  char buf[8192];
  ssize_t n = recv(c.fd, buf, sizeof buf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    close(c.fd);
    c.fd = -1;
    return;
  }
  c.in.append(buf, static_cast<size_t>(n));
  const std::string_view term = c.http ? "\r\n\r\n" : "\n";
  size_t end = c.in.find(term);
  if (end == std::string::npos) {
    if (c.in.size() > kMaxRequest) {
      close(c.fd);
      c.fd = -1;
    }
    return;
  }
  int fd = c.fd;
  c.fd = -1;  // the request owns the connection from here
  if (c.http) {
    std::string reply = http_reply(c.in, [this] { return metrics_body(); });
    std::string err;
    write_all(fd, reply, now_ms() + 2000, &err);
    close(fd);
    return;
  }
  handle_request(fd, c.in.substr(0, end));
}

void Controller::send_line(int fd, const nlohmann::json& j) {
  if (fd < 0) return;
  std::string err;
  if (!write_all(fd, j.dump() + "\n", now_ms() + 2000, &err))
    common::log::debug("CLI client went away: {}", err);
}

void Controller::finish(Waiter& w, const nlohmann::json& reply) {
  if (w.fd < 0) return;
  send_line(w.fd, reply);
  close(w.fd);
  w.fd = -1;
}

std::string Controller::metrics_body() {
  StatList general, settings, items, slabs;
  ControlFigures f;
  std::string err;
  if (cur_ && cur_->alive() && cur_->ready_ms) {
    f.dataplane_up = admin_stats(cur_->endpoint, "", 2000, &general, &err) &&
                     admin_stats(cur_->endpoint, "settings", 2000, &settings, &err) &&
                     admin_stats(cur_->endpoint, "items", 2000, &items, &err) &&
                     admin_stats(cur_->endpoint, "slabs", 2000, &slabs, &err);
    if (!f.dataplane_up) common::log::warn("metrics: {}", err);
  }
  f.control_uptime_s = static_cast<double>(now_ms() - started_ms_) / 1000.0;
  f.restarts = restarts_;
  f.upgrades_ok = upgrades_ok_;
  f.upgrades_refused = upgrades_refused_;
  f.upgrades_failed = upgrades_failed_;
  if (last_upgrade_.is_object() && last_upgrade_.value("ok", false)) {
    f.last_upgrade_serve_s = last_upgrade_.value("serve_ms", 0.0) / 1000.0;
    f.last_upgrade_total_s = last_upgrade_.value("total_ms", 0.0) / 1000.0;
  }
  if (state_ == State::backoff) f.backoff_s = static_cast<double>(restart_at_ms_ - now_ms()) / 1e3;
  if (!f.dataplane_up) general.clear(), settings.clear(), items.clear(), slabs.clear();
  return format_metrics(general, settings, items, slabs, f);
}

}  // namespace cachet::control
