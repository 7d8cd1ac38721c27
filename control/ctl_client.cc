// The control API client used by cachetctl.
#include "control/ctl_client.hh"

#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "control/net.hh"
#include "control/process.hh"

namespace cachet::control {

int exit_status_for(const nlohmann::json& reply) {
  if (reply.value("ok", false)) return kExitOk;
  const std::string code = reply.value("code", "");
  if (code == "no_control") return kExitNoControl;
  if (code == "refused") return kExitRefused;
  if (code == "usage" || code == "unknown_key" || code == "bad_value" || code == "read_only")
    return kExitUsage;
  return kExitFailed;
}

nlohmann::json control_call(const std::string& socket_path, const nlohmann::json& req,
                            int idle_timeout_ms,
                            const std::function<void(const nlohmann::json&)>& on_progress) {
  std::string err;
  int fd = connect_unix(socket_path, 3000, &err);
  if (fd < 0) {
    const int e = errno;
    std::string why = err;
    if (e == ENOENT || e == ECONNREFUSED)
      why = fmt::format("no cachet-control is running on {} ({}); start one with "
                        "cachet-control, or pass --socket",
                        socket_path, e == ENOENT ? "no such socket" : "connection refused");
    return {{"ok", false}, {"code", "no_control"}, {"error", why}};
  }
  nlohmann::json reply;
  if (!write_all(fd, req.dump() + "\n", now_ms() + 3000, &err)) {
    close(fd);
    return {{"ok", false}, {"code", "no_control"}, {"error", "sending the request: " + err}};
  }
  std::string buf;
  while (true) {
    long end = read_until(fd, &buf, "\n", now_ms() + idle_timeout_ms, false, &err);
    if (end < 0) {
      reply = {{"ok", false},
               {"code", "failed"},
               {"error", fmt::format("no complete reply from cachet-control: {}", err)}};
      break;
    }
    nlohmann::json line = nlohmann::json::parse(buf.substr(0, static_cast<size_t>(end)), nullptr,
                                                false);
    buf.erase(0, static_cast<size_t>(end));
    if (!line.is_object()) {
      reply = {{"ok", false}, {"code", "failed"}, {"error", "malformed reply from cachet-control"}};
      break;
    }
    if (line.contains("progress")) {
      if (on_progress) on_progress(line);
      continue;
    }
    reply = std::move(line);
    break;
  }
  close(fd);
  return reply;
}

}  // namespace cachet::control
