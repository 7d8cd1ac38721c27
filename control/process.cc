// fork/exec of cachetd and of short probes, with the signal and descriptor hygiene a
// supervisor needs (no inherited mask, no inherited descriptors, death with the parent).
#include "control/process.hh"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

#include <fmt/format.h>

namespace cachet::control {

namespace {

// In the child between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(char** argv, int out_w, int err_w, int parent) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(127);  // the parent died before prctl
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  dup2(out_w, STDOUT_FILENO);
  dup2(out_w, STDERR_FILENO);
  // Close everything else but the exec-error pipe (close-on-exec anyway).
  for (int fd = 3; fd < 1024; ++fd)
    if (fd != err_w) close(fd);
  execv(argv[0], argv);
  int e = errno;
  ssize_t r = write(err_w, &e, sizeof e);
  (void)r;
  _exit(127);
}

}  // namespace

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

bool spawn(const std::vector<std::string>& args, pid_t* pid, int* out_fd, std::string* error) {
  if (args.empty()) {
    *error = "no program to run";
    return false;
  }
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    *error = fmt::format("pipe: {}", std::strerror(errno));
    return false;
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    *error = fmt::format("pipe: {}", std::strerror(errno));
    close(out[0]);
    close(out[1]);
    return false;
  }
  const pid_t parent = getpid();
  pid_t p = fork();
  if (p < 0) {
    *error = fmt::format("fork: {}", std::strerror(errno));
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    return false;
  }
  if (p == 0) exec_child(argv.data(), out[1], err[1], parent);
  close(out[1]);
  close(err[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(err[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  close(err[0]);
  if (n == sizeof child_errno) {
    waitpid(p, nullptr, 0);
    close(out[0]);
    *error = fmt::format("cannot run {}: {}", args[0], std::strerror(child_errno));
    return false;
  }
  fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
  *pid = p;
  *out_fd = out[0];
  return true;
}

bool run_capture(const std::vector<std::string>& argv, int timeout_ms, std::string* output,
                 int* exit_status, std::string* error) {
  pid_t pid;
  int fd;
  *exit_status = -1;
  if (!spawn(argv, &pid, &fd, error)) return false;
  const int64_t deadline = now_ms() + timeout_ms;
  bool killed = false;
  while (true) {
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      if (output->size() < (1u << 20)) output->append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EAGAIN) {
      break;
    }
  }
  close(fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (killed) {
    *error = fmt::format("{} did not finish within {} ms", argv[0], timeout_ms);
    return false;
  }
  *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return true;
}

std::vector<pid_t> find_by_admin_socket(const std::string& prefix) {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  while (dirent* e = readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == getpid()) continue;
    std::ifstream f(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    // A zombie's command line is empty: it holds nothing any more.
    std::vector<std::string_view> argv;
    for (size_t at = 0; at < cmdline.size();) {
      size_t nul = cmdline.find('\0', at);
      if (nul == std::string::npos) nul = cmdline.size();
      argv.emplace_back(cmdline.data() + at, nul - at);
      at = nul + 1;
    }
    for (size_t i = 0; i + 1 < argv.size(); ++i)
      if (argv[i] == "--admin-socket" && argv[i + 1].starts_with(prefix)) {
        out.push_back(static_cast<pid_t>(pid));
        break;
      }
  }
  closedir(proc);
  return out;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return fmt::format("killed by signal {} ({}){}", sig, strsignal(sig),
                       WCOREDUMP(status) ? ", core dumped" : "");
  }
  return fmt::format("stopped (wait status {:#x})", status);
}

}  // namespace cachet::control
