// Supervision of cachetd: start, readiness (`version` on the admin channel), crash restart with
// backoff, `cachetctl restart`, and the orderly stop (SIGTERM, then SIGKILL after
// supervisor.stop_timeout_ms) that ends cachet-control.
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "common/log.hh"
#include "control/controller.hh"
#include "dataplane/daemon/takeover_path.hh"

namespace cachet::control {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

// The last non-empty output line, for one-line messages.
std::string last_line(const std::string& tail) {
  size_t end = tail.find_last_not_of("\r\n ");
  if (end == std::string::npos) return "";
  size_t start = tail.rfind('\n', end);
  return tail.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start + 1));
}

}  // namespace

std::string Controller::next_admin_socket() {
  return fmt::format("{}.cachetd.{}", socket_path_, ++admin_gen_);
}

void Controller::point_admin_link(const std::string& target) {
  const std::string link = socket_path_ + ".cachetd";
  if (target.empty()) {
    unlink(link.c_str());
    return;
  }
  const std::string tmp = link + ".new";
  unlink(tmp.c_str());
  if (symlink(target.c_str(), tmp.c_str()) != 0 || rename(tmp.c_str(), link.c_str()) != 0)
    common::log::warn("cannot point {} at {}: {}", link, target, std::strerror(errno));
}

// A cachet-control that was killed (SIGKILL, the OOM killer) leaves its cachetd processes
// exiting: PR_SET_PDEATHSIG gave them SIGTERM, but until they are gone they hold the arena's
// lock and the port, and the cachetd started now would fail before it served. The control
// socket is this process's alone (open_sockets refuses one that answers), so every process
// with an admin socket named after it is such a leftover: wait until they are gone (SIGTERM
// again, SIGKILL after supervisor.stop_timeout_ms), then remove the sockets they left.
void Controller::clear_leftovers() {
  const std::string prefix = socket_path_ + ".cachetd.";
  std::vector<pid_t> left = find_by_admin_socket(prefix);
  if (!left.empty()) {
    std::string pids;
    for (pid_t p : left) pids += (pids.empty() ? "" : ", ") + std::to_string(p);
    common::log::warn("cachetd pid {} of an earlier cachet-control on {} still running; waiting "
                      "up to {} ms for it to exit",
                      pids, socket_path_, config_.supervisor_stop_timeout_ms);
    for (pid_t p : left) kill(p, SIGTERM);
    const int64_t kill_at = now_ms() + config_.supervisor_stop_timeout_ms;
    bool killed = false;
    while (!left.empty() && now_ms() < kill_at + 5000) {
      if (!killed && now_ms() >= kill_at) {
        for (pid_t p : left) {
          common::log::warn("cachetd pid {} still running after SIGTERM; SIGKILL", p);
          kill(p, SIGKILL);
        }
        killed = true;
      }
      usleep(10000);
      left = find_by_admin_socket(prefix);
    }
    if (left.empty())
      common::log::info("the earlier cachet-control's cachetd exited");
    else
      common::log::error("cachetd pid {} of an earlier cachet-control does not exit; starting "
                         "cachetd anyway", left.front());
  }
  // Admin and takeover sockets of cachetd processes that are gone (killed, or of an earlier
  // cachet-control): stale, and never reused by name otherwise.
  const size_t slash = socket_path_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : socket_path_.substr(0, slash);
  const std::string base = prefix.substr(slash == std::string::npos ? 0 : slash + 1);
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::string_view(e->d_name).starts_with(base)) unlink((dir + "/" + e->d_name).c_str());
    closedir(d);
  }
}

bool Controller::start_dataplane(std::string* error) {
  auto p = std::make_unique<Proc>();
  if (!make_plan(config_, overrides_, &p->plan, error)) return false;
  if (!probe_binary(p->plan.binary, &p->caps, error)) return false;
  if (p->caps.admin_socket) {
    p->admin_socket = next_admin_socket();
    unlink(p->admin_socket.c_str());
  } else {
    common::log::warn("{} has no --admin-socket; talking to it over TCP port {}", p->plan.binary,
               p->plan.settings.net.tcp_port);
  }
  p->endpoint = admin_endpoint(p->plan, p->caps, p->admin_socket);
  const std::vector<std::string> argv = command_line(p->plan, p->caps, p->admin_socket, {});
  if (!spawn(argv, &p->pid, &p->out_fd, error)) return false;
  p->started_ms = now_ms();
  p->next_probe_ms = p->started_ms + 20;
  arena_ = p->plan.arena;
  common::log::info("started cachetd pid {}: {}", p->pid, join(argv));
  if (cur_ && !cur_->exited) exiting_.push_back(std::move(cur_));
  cur_ = std::move(p);
  state_ = State::starting;
  return true;
}

void Controller::poll_ready(Proc& p) {
  const int64_t now = now_ms();
  if (!p.alive() || p.ready_ms || now < p.next_probe_ms) return;
  std::string reply, err;
  if (admin_call(p.endpoint, "version", false, 500, &reply, &err) &&
      reply.rfind("VERSION ", 0) == 0) {
    p.version = reply.substr(8);
    p.ready_ms = now_ms();
    if (&p == cur_.get()) on_ready();
    return;
  }
  p.next_probe_ms = now_ms() + 50;
  if (&p == cur_.get() && p.kill_at_ms == 0 &&
      now - p.started_ms > config_.supervisor_ready_timeout_ms) {
    common::log::error("cachetd pid {} did not answer on {} within {} ms ({}); stopping it", p.pid,
                p.endpoint.describe(), config_.supervisor_ready_timeout_ms, err);
    stop_proc(p);
  }
}

void Controller::on_ready() {
  state_ = State::running;
  ever_ready_ = true;
  point_admin_link(cur_->admin_socket);
  const int64_t ms = cur_->ready_ms - cur_->started_ms;
  common::log::info("cachetd pid {} (version {}) serving after {} ms; admin {}", cur_->pid,
             cur_->version, ms, cur_->endpoint.describe());
  answer_restart_waiters({{"ok", true}, {"pid", cur_->pid}, {"ready_ms", ms}});
}

void Controller::answer_restart_waiters(const nlohmann::json& reply) {
  for (Waiter& w : restart_waiters_) finish(w, reply);
  restart_waiters_.clear();
}

void Controller::reap_children() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    Proc* p = nullptr;
    if (cur_ && cur_->pid == pid) p = cur_.get();
    if (upgrade_.next && upgrade_.next->pid == pid) p = upgrade_.next.get();
    for (auto& e : exiting_)
      if (e->pid == pid) p = e.get();
    if (!p) continue;  // not ours (a probe reaps its own child)
    p->exited = true;
    p->wait_status = status;
    drain_output(*p);
    on_exit(*p);
  }
}

void Controller::on_exit(Proc& p) {
  const std::string how = describe_wait_status(p.wait_status);
  if (!p.admin_socket.empty()) {
    unlink(p.admin_socket.c_str());
    // A cachetd killed while it listened for a successor leaves its takeover socket behind.
    unlink(dataplane::takeover::socket_path(p.admin_socket).c_str());
  }
  for (size_t i = 0; i < exiting_.size(); ++i) {
    if (exiting_[i].get() != &p) continue;
    common::log::info("cachetd pid {} {}", p.pid, how);
    if (upgrade_.active && p.pid == upgrade_.old_pid) {
      upgrade_.old_gone = true;
      upgrade_.old_gone_ms = now_ms();
    }
    exiting_.erase(exiting_.begin() + static_cast<long>(i));
    return;
  }
  if (upgrade_.next.get() == &p) {
    const std::string line = last_line(p.tail);
    if (WIFEXITED(p.wait_status) && WEXITSTATUS(p.wait_status) == 3)
      end_upgrade(false, "refused", "refused: " + (line.empty() ? how : line));
    else
      end_upgrade(false, "failed",
                  fmt::format("new cachetd {}{}", how, line.empty() ? "" : ": " + line));
    return;
  }
  if (cur_.get() != &p) return;
  if (state_ == State::stopping) {
    common::log::info("cachetd pid {} {}", p.pid, how);
    return;
  }
  if (upgrade_.active && p.pid == upgrade_.old_pid) {
    // The old one died while the new one starts: the new one takes over (or, if it fails too,
    // end_upgrade restarts cachetd as after a crash).
    common::log::warn("cachetd pid {} {} during the upgrade", p.pid, how);
    upgrade_.old_gone = true;
    upgrade_.old_gone_ms = now_ms();
    return;
  }
  if (upgrade_.active) {
    // The new one served (it is the current cachetd) and died while the old one drains: the
    // upgrade failed, and nothing serves; end_upgrade restarts cachetd as after a crash.
    const std::string line = last_line(p.tail);
    end_upgrade(false, "failed",
                fmt::format("new cachetd pid {} {} after it served{}; restarting it", p.pid, how,
                            line.empty() ? "" : " (last output: " + line + ")"));
    return;
  }
  if (restart_requested_) {
    restart_requested_ = false;
    common::log::info("cachetd pid {} {} (restart requested)", p.pid, how);
    std::string err;
    if (start_dataplane(&err)) return;
    common::log::error("cannot start cachetd: {}", err);
    answer_restart_waiters({{"ok", false}, {"code", "failed"}, {"error", err}});
  }
  on_crash(p);
}

void Controller::on_crash(Proc& p) {
  const std::string how = describe_wait_status(p.wait_status);
  const std::string line = last_line(p.tail);
  last_exit_ = fmt::format("pid {} {}{}", p.pid, how, line.empty() ? "" : " (last output: " + line + ")");
  if (!ever_ready_) {
    common::log::error("cachetd {} before it served; not retrying (fix the cause and start again)",
                last_exit_);
    begin_shutdown(false, 1);
    return;
  }
  answer_restart_waiters(
      {{"ok", false}, {"code", "failed"}, {"error", "cachetd " + last_exit_}});
  ++restarts_;
  const int64_t ran = now_ms() - p.started_ms;
  backoff_.configure(config_.supervisor_backoff_initial_ms, config_.supervisor_backoff_max_ms);
  const int64_t delay = backoff_.next_delay(ran, config_.supervisor_stable_after_s * 1000);
  common::log::error("cachetd {} after {:.1f} s; restarting in {} ms (crash {} in a row)", last_exit_,
              static_cast<double>(ran) / 1000.0, delay, backoff_.streak());
  state_ = State::backoff;
  restart_at_ms_ = now_ms() + delay;
}

void Controller::stop_proc(Proc& p) {
  if (!p.alive() || p.kill_at_ms) return;
  kill(p.pid, SIGTERM);
  p.kill_at_ms = now_ms() + config_.supervisor_stop_timeout_ms;
}

void Controller::begin_shutdown(bool discard, int exit_status) {
  discard_on_exit_ |= discard;
  if (state_ == State::stopping) return;
  state_ = State::stopping;
  exit_status_ = exit_status;
  if (upgrade_.active) end_upgrade(false, "failed", "cachet-control is stopping");
  answer_restart_waiters({{"ok", false}, {"code", "failed"}, {"error", "cachet-control is stopping"}});
  if (cur_) stop_proc(*cur_);
  for (auto& e : exiting_) stop_proc(*e);
}

void Controller::tick() {
  const int64_t now = now_ms();
  if (state_ == State::starting && cur_) poll_ready(*cur_);
  if (state_ == State::backoff && now >= restart_at_ms_) {
    std::string err;
    if (!start_dataplane(&err)) {
      common::log::error("cannot start cachetd: {}", err);
      Proc failed;
      failed.started_ms = now;
      failed.wait_status = 0x7f00;  // "exited with status 127"
      on_crash(failed);
    }
  }
  for (Proc* p : {cur_.get(), upgrade_.next.get()})
    if (p && p->kill_at_ms && now >= p->kill_at_ms && p->alive()) {
      common::log::warn("cachetd pid {} still running {} ms after SIGTERM; SIGKILL", p->pid,
                 config_.supervisor_stop_timeout_ms);
      kill(p->pid, SIGKILL);
      p->kill_at_ms = 0;
    }
  for (auto& p : exiting_)
    if (p->kill_at_ms && now >= p->kill_at_ms && p->alive()) {
      common::log::warn("cachetd pid {} still running after SIGTERM; SIGKILL", p->pid);
      kill(p->pid, SIGKILL);
      p->kill_at_ms = 0;
    }
  upgrade_tick();
  if (state_ != State::stopping) return;
  bool alive = (cur_ && cur_->alive()) || (upgrade_.next && upgrade_.next->alive());
  for (auto& e : exiting_) alive |= e->alive();
  if (alive) return;
  if (discard_on_exit_) {
    for (const std::string& f : arena_files(arena_))
      if (unlink(f.c_str()) == 0) common::log::info("removed arena {}", f);
  }
  point_admin_link("");
  for (Waiter& w : stop_waiters_) finish(w, {{"ok", true}, {"discarded", discard_on_exit_}});
  stop_waiters_.clear();
  done_ = true;
}

int64_t Controller::next_deadline() const {
  int64_t d = now_ms() + 1000;
  if (state_ == State::starting || upgrade_.active || state_ == State::stopping)
    d = std::min(d, now_ms() + 20);
  if (state_ == State::backoff) d = std::min(d, restart_at_ms_);
  return d;
}

}  // namespace cachet::control
