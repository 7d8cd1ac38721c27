// Upgrade in place. The new cachetd gets the running one's flags plus --takeover <old admin
// socket> and its own --admin-socket (and --shm-discard when the operator discards the cache).
// It validates the arena (exit 3 with a message when it cannot read it: "refused"), takes the
// listening sockets from the old one over the old admin socket and serves; the old one drains
// and exits. Control waits for the new one to answer `version`, then for the old one to exit,
// streaming progress lines to the CLI, and then reports the timings.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "common/log.hh"
#include "control/controller.hh"

namespace cachet::control {

// The DPDK driver's hand-over gap from the new cachetd's log ("... serving again 12.3 ms after
// the predecessor was asked to stop polling (the port hand-over gap)"), or -1.
double port_gap_ms(const std::string& log) {
  const size_t at = log.rfind("(the port hand-over gap)");
  if (at == std::string::npos) return -1;
  const size_t s = log.rfind("serving again ", at);
  if (s == std::string::npos) return -1;
  return std::atof(log.c_str() + s + 14);
}

void Controller::upgrade_progress(const std::string& msg) {
  common::log::info("upgrade: {}", msg);
  send_line(upgrade_.waiter.fd,
            {{"progress", msg}, {"elapsed_ms", now_ms() - upgrade_.started_ms}});
}

void Controller::start_upgrade(int fd, const nlohmann::json& req) {
  Waiter w{fd};
  auto fail = [&](const std::string& code, const std::string& msg) {
    finish(w, {{"ok", false}, {"code", code}, {"error", msg}});
  };
  if (upgrade_.active) return fail("busy", "an upgrade is already running");
  if (state_ != State::running || !cur_ || !cur_->alive())
    return fail("unavailable", "cachetd is not serving now; see `cachetctl status`");
  Config next_config = config_;
  if (req.contains("binary") && req["binary"].is_string() && !req["binary"].get<std::string>().empty())
    next_config.dataplane_binary = req["binary"].get<std::string>();
  const bool discard = req.value("discard_cache", false);
  auto p = std::make_unique<Proc>();
  std::string err;
  if (!make_plan(next_config, overrides_, &p->plan, &err)) return fail("failed", err);
  if (!probe_binary(p->plan.binary, &p->caps, &err)) return fail("failed", err);
  if (!p->caps.takeover || !p->caps.admin_socket)
    return fail("failed", fmt::format("{} does not support upgrade in place (its -h lists no "
                                      "--takeover/--admin-socket)",
                                      p->plan.binary));
  if (!cur_->caps.admin_socket)
    return fail("failed", fmt::format("the running cachetd ({}) has no admin socket to hand its "
                                      "sockets over; use `cachetctl restart`",
                                      cur_->plan.binary));
  p->admin_socket = next_admin_socket();
  unlink(p->admin_socket.c_str());
  p->endpoint = admin_endpoint(p->plan, p->caps, p->admin_socket);
  std::vector<std::string> extra = {"--takeover", cur_->admin_socket};
  if (discard) extra.push_back("--shm-discard");
  const std::vector<std::string> argv = command_line(p->plan, p->caps, p->admin_socket, extra);
  if (!spawn(argv, &p->pid, &p->out_fd, &err)) return fail("failed", err);
  p->started_ms = now_ms();
  p->next_probe_ms = p->started_ms + 10;

  upgrade_.active = true;
  upgrade_.discard = discard;
  upgrade_.binary = p->plan.binary;
  upgrade_.started_ms = p->started_ms;
  upgrade_.serving_ms = 0;
  upgrade_.port_gap_ms = -1;
  upgrade_.old_pid = cur_->pid;
  upgrade_.old_gone = false;
  upgrade_.old_gone_ms = 0;
  upgrade_.waiter = w;
  upgrade_.next = std::move(p);
  upgrade_progress(fmt::format("started new cachetd pid {} ({}{}); old pid {} keeps serving",
                               upgrade_.next->pid, upgrade_.binary,
                               discard ? ", discarding the cache" : "", upgrade_.old_pid));
}

void Controller::upgrade_tick() {
  if (!upgrade_.active) return;
  const int64_t now = now_ms();
  Proc* next = upgrade_.next.get();
  if (next && !next->ready_ms) {
    poll_ready(*next);
    if (!next->ready_ms) {
      if (next->kill_at_ms == 0 && now - upgrade_.started_ms > config_.upgrade_ready_timeout_ms) {
        upgrade_progress(fmt::format("new cachetd did not serve within {} ms; stopping it",
                                     config_.upgrade_ready_timeout_ms));
        stop_proc(*next);  // its exit ends the upgrade as failed
      }
      return;
    }
    // The new one serves: it becomes the current cachetd; the old one drains.
    upgrade_.serving_ms = next->ready_ms;
    upgrade_progress(fmt::format("new cachetd pid {} (version {}) serving after {} ms",
                                 next->pid, next->version,
                                 upgrade_.serving_ms - upgrade_.started_ms));
    drain_output(*next);
    upgrade_.port_gap_ms = port_gap_ms(next->tail);
    if (upgrade_.port_gap_ms >= 0)
      upgrade_progress(fmt::format("DPDK port hand-over gap: {:.1f} ms", upgrade_.port_gap_ms));
    std::unique_ptr<Proc> old = std::move(cur_);
    cur_ = std::move(upgrade_.next);
    if (old && old->alive()) exiting_.push_back(std::move(old));
    // The hand-over cannot be undone (the old one gave up its sockets and the arena): restarts
    // use the new binary from now on, even if the new one dies before the old one exits.
    config_.dataplane_binary = upgrade_.binary;
    point_admin_link(cur_->admin_socket);
    ever_ready_ = true;
    state_ = State::running;
    upgrade_.drain_deadline_ms = now + config_.upgrade_drain_timeout_ms;
    if (!upgrade_.old_gone)
      upgrade_progress(fmt::format("waiting for old cachetd pid {} to finish in-flight "
                                   "requests and exit",
                                   upgrade_.old_pid));
  }
  if (upgrade_.old_gone) {
    end_upgrade(true, "", "");
    return;
  }
  if (now > upgrade_.drain_deadline_ms) {
    for (auto& e : exiting_)
      if (e->pid == upgrade_.old_pid && e->alive() && !e->kill_at_ms) {
        upgrade_progress(fmt::format("old cachetd pid {} still running after {} ms; SIGTERM",
                                     e->pid, config_.upgrade_drain_timeout_ms));
        stop_proc(*e);
      }
  }
}

void Controller::end_upgrade(bool ok, const std::string& code, const std::string& msg) {
  const int64_t now = now_ms();
  nlohmann::json r = {{"ok", ok}, {"binary", upgrade_.binary}, {"discard_cache", upgrade_.discard}};
  if (ok) {
    ++upgrades_ok_;
    r["pid"] = cur_->pid;
    r["version"] = cur_->version;
    r["old_pid"] = upgrade_.old_pid;
    r["serve_ms"] = upgrade_.serving_ms - upgrade_.started_ms;
    if (upgrade_.port_gap_ms >= 0) r["port_gap_ms"] = upgrade_.port_gap_ms;
    r["total_ms"] = std::max(upgrade_.old_gone_ms ? upgrade_.old_gone_ms : now, upgrade_.serving_ms) -
                    upgrade_.started_ms;
    common::log::info("upgrade done: pid {} serving after {} ms, old pid {} gone after {} ms",
               cur_->pid, r["serve_ms"].get<int64_t>(), upgrade_.old_pid,
               r["total_ms"].get<int64_t>());
  } else {
    (code == "refused" ? upgrades_refused_ : upgrades_failed_)++;
    r["code"] = code;
    r["error"] = msg;
    common::log::error("upgrade {}", code == "refused" ? msg : "failed: " + msg);
    if (upgrade_.next && upgrade_.next->alive()) {
      stop_proc(*upgrade_.next);
      exiting_.push_back(std::move(upgrade_.next));
    }
  }
  upgrade_.next.reset();
  upgrade_.active = false;
  last_upgrade_ = r;
  last_upgrade_["at_unix"] = static_cast<int64_t>(time(nullptr));
  finish(upgrade_.waiter, r);
  // The old cachetd died while the new one failed: nothing serves; restart as after a crash.
  if (!ok && cur_ && cur_->exited && state_ != State::stopping) on_crash(*cur_);
}

}  // namespace cachet::control
