// `cachetctl top` and `cachetctl slabs --watch`: live views refreshed every interval from
// `stats` (and `stats slabs`, `stats items`); q or Ctrl-C quits, and --iterations bounds them.
// Raw keyboard mode only when stdin is a terminal, restored on exit.
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>

#include <fmt/format.h>

#include "control/ctl_client.hh"
#include "control/ctl_views.hh"
#include "control/process.hh"

namespace cachet::control {

namespace {

std::atomic<bool> g_quit{false};

void on_sigint(int) { g_quit.store(true); }

class RawTerminal {
 public:
  RawTerminal() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

// Waits up to ms; true when the user asked to quit (q, Q or Ctrl-C).
bool wait_or_quit(int ms, bool keyboard) {
  const int64_t end = now_ms() + ms;
  while (!g_quit.load()) {
    const int64_t left = end - now_ms();
    if (left <= 0) return false;
    pollfd p{keyboard ? STDIN_FILENO : -1, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) > 0 && (p.revents & POLLIN)) {
      char c = 0;
      if (read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q' || c == 3)) return true;
    }
  }
  return true;
}

bool fetch(const std::string& socket, const char* group, StatList* out, std::string* error,
           int* exit_status) {
  nlohmann::json r = control_call(socket, {{"cmd", "stats"}, {"group", group}}, 10000);
  if (!r.value("ok", false)) {
    *error = r.value("error", "no reply");
    *exit_status = exit_status_for(r);
    return false;
  }
  *out = stats_from_json(r["stats"]);
  return true;
}

bool sample(const std::string& socket, bool slabs, TopSample* s, std::string* error,
            int* exit_status) {
  s->t_ms = now_ms();
  return fetch(socket, "", &s->stats, error, exit_status) &&
         (!slabs || (fetch(socket, "slabs", &s->slabs, error, exit_status) &&
                     fetch(socket, "items", &s->items, error, exit_status)));
}

}  // namespace

int run_live(const std::string& socket, int iterations, double interval_s, bool slabs) {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);
  RawTerminal term;
  const bool screen = isatty(STDOUT_FILENO);
  const int interval_ms = static_cast<int>(interval_s * 1000);
  TopSample prev, cur;
  std::string error;
  int status = kExitOk;
  if (!sample(socket, slabs, &prev, &error, &status)) {
    std::fprintf(stderr, "cachetctl: %s\n", error.c_str());
    return status;
  }
  for (int frame = 0; iterations <= 0 || frame < iterations; ++frame) {
    if (wait_or_quit(interval_ms, term.active())) break;
    if (!sample(socket, slabs, &cur, &error, &status)) {
      if (status == kExitNoControl) {
        std::fprintf(stderr, "cachetctl: %s\n", error.c_str());
        return status;
      }
      std::printf("%s(waiting: %s)\n", screen ? "\x1b[H\x1b[2J" : "", error.c_str());
      std::fflush(stdout);
      continue;
    }
    char when[32];
    const time_t now = time(nullptr);
    strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
    const std::string* pid = find_stat(cur.stats, "pid");
    const std::string* up = find_stat(cur.stats, "uptime");
    std::string header = fmt::format(
        "cachet {}  {}  cachetd pid {}  up {} s  every {:.1f} s{}\n\n", slabs ? "slabs" : "top",
        when, pid ? *pid : "?", up ? *up : "?", interval_s, term.active() ? "  (q quits)" : "");
    std::string body =
        slabs ? format_slabs_live(prev, cur, header) : format_top(prev, cur, header);
    std::printf("%s%s%s", screen ? "\x1b[H\x1b[2J" : "", body.c_str(), screen ? "" : "\n");
    std::fflush(stdout);
    prev = std::move(cur);
  }
  return kExitOk;
}

}  // namespace cachet::control
