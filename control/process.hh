// Child processes for cachet-control: start cachetd with its output on a pipe, run a short
// command and capture its output (cachetd -h), and the restart backoff rule.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cachet::control {

// Starts argv[0] with argv. The child gets an empty signal mask, default SIGPIPE, its own
// process group (a terminal's Ctrl-C reaches only cachet-control, which stops it in order) and
// SIGTERM when the calling thread dies (PR_SET_PDEATHSIG), and its stdout and stderr go to
// *out_fd (non-blocking read end, close-on-exec). Fails (with *error naming the binary and the
// reason, e.g. exec's errno) before returning a pid if the program cannot be executed.
bool spawn(const std::vector<std::string>& argv, pid_t* pid, int* out_fd, std::string* error);

// Runs argv to completion, at most timeout_ms (then SIGKILL), returning its stdout and stderr
// and its exit status (-1 when killed or not run). For `cachetd -h` probes.
bool run_capture(const std::vector<std::string>& argv, int timeout_ms, std::string* output,
                 int* exit_status, std::string* error);

// Live processes (zombies are not) whose command line has `--admin-socket PATH` with PATH
// starting with `prefix`: the cachetd processes a cachet-control on the same control socket
// started. Read from /proc.
std::vector<pid_t> find_by_admin_socket(const std::string& prefix);

// "exited with status 3", "killed by signal 9 (Killed)".
std::string describe_wait_status(int status);

// Restart delays after crashes: backoff_initial, doubling for each crash in a row up to
// backoff_max; a child that ran at least stable_ms before it crashed starts the sequence again.
class Backoff {
 public:
  Backoff(int64_t initial_ms, int64_t max_ms) { configure(initial_ms, max_ms); }
  void configure(int64_t initial_ms, int64_t max_ms) {
    initial_ = initial_ms;
    max_ = max_ms < initial_ms ? initial_ms : max_ms;
  }
  // The delay before restarting a child that crashed after running ran_ms.
  int64_t next_delay(int64_t ran_ms, int64_t stable_ms) {
    if (ran_ms >= stable_ms) streak_ = 0;
    int64_t d = initial_;
    for (unsigned i = 0; i < streak_ && d < max_; ++i) d *= 2;
    if (d > max_) d = max_;
    ++streak_;
    return d;
  }
  void reset() { streak_ = 0; }
  unsigned streak() const { return streak_; }

 private:
  int64_t initial_ = 100, max_ = 30000;
  unsigned streak_ = 0;  // crashes in a row without a stable run between them
};

// Monotonic milliseconds.
int64_t now_ms();

}  // namespace cachet::control
