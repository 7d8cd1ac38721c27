// Fuzz target: cachet-control's CLI API (control/api.cc): each line of the input is one JSON
// request on a connection of its own, answered by a Controller that supervises no cachetd.
// The process gets a network namespace of its own first, so `config_set metrics.port` binds
// nothing on the host. Invariants: nothing throws or crashes; an answered request gets exactly
// one line, a JSON object with a boolean "ok" and, when it is false, a known "code" and an
// "error" sentence; a request left unanswered is a long operation (restart, stop) whose
// connection the controller keeps, and no connection is ever answered twice.
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/controller.hh"
#include "tests/fuzz/harness.hh"

using namespace cachet;
using json = nlohmann::json;

namespace {

const std::set<std::string> kCodes = {"usage", "unavailable", "busy", "failed", "refused",
                                      "unknown_key", "bad_value", "read_only"};

// Everything the controller sent on one connection, and whether it closed it.
std::string drain(int fd, bool* closed) {
  std::string got;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      continue;
    }
    *closed = n == 0;
    return got;
  }
}

void check_reply(const std::string& line, const std::string& got) {
  FUZZ_EXPECT(!got.empty() && got.find('\n') == got.size() - 1,
               "request '{}': reply is not one line: '{}'", fuzz::printable(line),
               fuzz::printable(got));
  const json r = json::parse(got, nullptr, false);
  FUZZ_EXPECT(r.is_object() && r.contains("ok") && r["ok"].is_boolean(),
               "request '{}': reply is not an object with a boolean ok: '{}'",
               fuzz::printable(line), fuzz::printable(got));
  if (r["ok"].get<bool>()) return;
  FUZZ_EXPECT(r.contains("code") && r["code"].is_string() &&
                   kCodes.count(r["code"].get<std::string>()) && r.contains("error") &&
                   r["error"].is_string() && !r["error"].get<std::string>().empty(),
               "request '{}': error reply without a known code and a message: '{}'",
               fuzz::printable(line), fuzz::printable(got));
}

struct Kept {
  int ours, theirs;
  ino_t inode;  // of `theirs`, to tell it from a later descriptor with the same number
  std::string line;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (unshare(CLONE_NEWNET) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "fuzz_control_api needs a network namespace of its own (run it as "
                         "root or with user namespaces): metrics.port would bind host ports\n");
    std::exit(1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  control::Config config;
  config.control_log_level = "error";
  config.control_socket = "/nonexistent/cachet-fuzz.sock";  // never opened: run() is not called
  std::vector<Kept> kept;
  {
    control::Controller c(config, {}, "fuzz");
    std::string_view in(reinterpret_cast<const char*>(data), size);
    for (int n = 0; !in.empty() && n < 32; ++n) {
      const size_t nl = std::min(in.find('\n'), in.size());
      const std::string line(in.substr(0, nl));
      in.remove_prefix(std::min(nl + 1, in.size()));
      int sv[2];
      FUZZ_EXPECT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
      struct stat st {};
      fstat(sv[1], &st);
      c.handle_request(sv[1], line);
      bool closed = false;
      const std::string got = drain(sv[0], &closed);
      if (closed) {
        check_reply(line, got);
        close(sv[0]);
        continue;
      }
      const json req = json::parse(line, nullptr, false);
      const std::string cmd = req.is_object() && req.contains("cmd") && req["cmd"].is_string()
                                  ? req["cmd"].get<std::string>()
                                  : "";
      FUZZ_EXPECT(got.empty() && (cmd == "restart" || cmd == "stop"),
                   "request '{}' was answered '{}' but its connection kept open",
                   fuzz::printable(line), fuzz::printable(got));
      kept.push_back({sv[0], sv[1], st.st_ino, line});
    }
    // Long operations answered later (a stop answers the restarts before it).
    for (Kept& k : kept) {
      bool closed = false;
      const std::string got = drain(k.ours, &closed);
      if (closed) check_reply(k.line, got);
      else FUZZ_EXPECT(got.empty(), "request '{}' answered without closing",
                        fuzz::printable(k.line));
    }
  }
  for (Kept& k : kept) {  // the waiters a destroyed controller still held
    struct stat st {};
    if (fstat(k.theirs, &st) == 0 && st.st_ino == k.inode) close(k.theirs);
    close(k.ours);
  }
  return 0;
}
