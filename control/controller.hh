// cachet-control's core: one thread, one poll loop over signals, cachetd's output, the CLI API
// socket and the metrics listener; it starts and supervises cachetd, runs upgrades and answers
// the CLI. Its methods are spread over controller.cc (loop and I/O), supervisor.cc (start,
// readiness, crash restart, stop), upgrade.cc (upgrade in place) and api.cc (CLI requests).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/admin_client.hh"
#include "control/config.hh"
#include "control/launch.hh"
#include "control/process.hh"

namespace cachet::control {

// The DPDK port hand-over gap a new cachetd logged, in ms; -1 when its log has none.
double port_gap_ms(const std::string& log);

// One cachetd process.
struct Proc {
  pid_t pid = -1;
  int out_fd = -1;            // its stdout+stderr
  std::string out_partial;    // an unfinished output line
  std::string tail;           // its last output lines, for messages
  std::string admin_socket;   // --admin-socket given ("" when the binary has none)
  AdminEndpoint endpoint;     // where control reaches it
  LaunchPlan plan;
  Capabilities caps;
  int64_t started_ms = 0;
  int64_t ready_ms = 0;       // 0 until it answered `version`
  int64_t kill_at_ms = 0;     // SIGKILL then (0 = not being stopped)
  int64_t next_probe_ms = 0;  // next `version` probe while starting
  bool exited = false;
  int wait_status = 0;
  std::string version;
  bool alive() const { return pid > 0 && !exited; }

  Proc() = default;
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;
  ~Proc() {
    if (out_fd >= 0) ::close(out_fd);
  }
};

// A CLI connection waiting for a long operation (restart, stop, upgrade) to finish.
struct Waiter {
  int fd = -1;
};

class Controller {
 public:
  Controller(Config config, std::vector<std::string> overrides, std::string config_origin);
  ~Controller();
  // Runs until SIGINT, SIGTERM or `cachetctl stop`. Returns the process exit status.
  int run();
  // Answers one CLI API request line (api.cc) received on connection fd: writes the reply line
  // and closes fd, or keeps fd as the waiter of a long operation (restart, stop, upgrade) and
  // answers when it ends. Any line is safe: a malformed request gets a `usage` error.
  void handle_request(int fd, const std::string& line);

 private:
  enum class State { starting, running, backoff, stopping };
  struct Client {
    int fd = -1;
    std::string in;
    int64_t deadline_ms = 0;
    bool http = false;
  };
  struct Upgrade {
    bool active = false;
    std::unique_ptr<Proc> next;  // the new cachetd
    bool discard = false;
    std::string binary;
    int64_t started_ms = 0;
    int64_t serving_ms = 0;      // when the new one answered
    double port_gap_ms = -1;     // DPDK port hand-over gap the new one logged (-1: none)
    int64_t drain_deadline_ms = 0;
    pid_t old_pid = -1;
    bool old_gone = false;
    int64_t old_gone_ms = 0;
    Waiter waiter;
  };

  // controller.cc
  bool open_sockets(std::string* error);
  void loop();
  void on_signal();
  void drain_output(Proc& p);
  void accept_clients(int listen_fd, bool http);
  void serve_client(Client& c);
  void send_line(int fd, const nlohmann::json& j);
  void finish(Waiter& w, const nlohmann::json& reply);
  bool set_metrics_port(int64_t port, std::string* error);
  std::string metrics_body();

  // supervisor.cc
  void clear_leftovers();
  bool start_dataplane(std::string* error);
  void poll_ready(Proc& p);
  void on_ready();
  void reap_children();
  void on_exit(Proc& p);
  void on_crash(Proc& p);
  void answer_restart_waiters(const nlohmann::json& reply);
  void tick();
  void stop_proc(Proc& p);
  void begin_shutdown(bool discard, int exit_status);
  std::string next_admin_socket();
  void point_admin_link(const std::string& target);
  int64_t next_deadline() const;

  // upgrade.cc
  void start_upgrade(int fd, const nlohmann::json& req);
  void upgrade_tick();
  void upgrade_progress(const std::string& msg);
  void end_upgrade(bool ok, const std::string& code, const std::string& msg);

  // api.cc
  nlohmann::json status_json();
  nlohmann::json config_get(const nlohmann::json& req);
  nlohmann::json config_set(const nlohmann::json& req);
  nlohmann::json stats_json(const nlohmann::json& req);
  nlohmann::json invalidate_json();     // the invalidation daemon's whole status
  nlohmann::json invalidate_summary();  // its few lines in `status`

  Config config_;
  std::vector<std::string> overrides_;
  std::string origin_;
  std::string socket_path_;
  int64_t started_ms_;

  int signal_fd_ = -1;
  int api_fd_ = -1;
  int metrics_fd_ = -1;
  int metrics_port_ = 0;
  std::vector<Client> clients_;

  State state_ = State::starting;
  std::unique_ptr<Proc> cur_;
  std::vector<std::unique_ptr<Proc>> exiting_;  // stopped or replaced, not yet reaped
  Backoff backoff_;
  int64_t restart_at_ms_ = 0;
  bool ever_ready_ = false;
  bool restart_requested_ = false;
  std::vector<Waiter> restart_waiters_;
  std::vector<Waiter> stop_waiters_;
  bool discard_on_exit_ = false;
  std::string arena_;  // the arena of the last start, for stop --discard
  int exit_status_ = 0;
  bool done_ = false;
  unsigned admin_gen_ = 0;

  uint64_t restarts_ = 0;
  std::string last_exit_;
  uint64_t upgrades_ok_ = 0, upgrades_refused_ = 0, upgrades_failed_ = 0;
  nlohmann::json last_upgrade_;
  Upgrade upgrade_;
};

}  // namespace cachet::control
