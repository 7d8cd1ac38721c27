// The admin-channel client: one connection per call (cheap on a unix socket, and a cachetd
// restarted between calls is simply found again).
#include "control/admin_client.hh"

#include <unistd.h>

#include <fmt/format.h>

#include "control/net.hh"
#include "control/process.hh"

namespace cachet::control {

std::string AdminEndpoint::describe() const {
  if (!unix_path.empty()) return unix_path;
  return fmt::format("tcp {}:{}", host, port);
}

bool admin_call(const AdminEndpoint& ep, std::string_view request, bool multi_line,
                int timeout_ms, std::string* reply, std::string* error) {
  if (!ep.valid()) {
    *error = "cachetd has no admin channel (no --admin-socket and no TCP port)";
    return false;
  }
  const int64_t deadline = now_ms() + timeout_ms;
  int fd = ep.unix_path.empty() ? connect_tcp(ep.host, ep.port, timeout_ms, error)
                                : connect_unix(ep.unix_path, timeout_ms, error);
  if (fd < 0) return false;
  std::string req(request);
  req += "\r\n";
  std::string buf;
  bool ok = write_all(fd, req, deadline, error);
  long end = -1;
  while (ok) {
    // The first line tells an error reply from a stats body.
    end = read_until(fd, &buf, "\r\n", deadline, false, error);
    if (end < 0) {
      ok = false;
      break;
    }
    std::string_view first(buf.data(), static_cast<size_t>(end) - 2);
    if (first == "ERROR" || first.rfind("CLIENT_ERROR", 0) == 0 ||
        first.rfind("SERVER_ERROR", 0) == 0) {
      *error = fmt::format("cachetd answered '{}' to '{}'", first, request);
      ok = false;
      break;
    }
    if (!multi_line) {
      *reply = std::string(first);
      break;
    }
    if (first == "END") {
      reply->clear();
      break;
    }
    end = read_until(fd, &buf, "\r\nEND\r\n", deadline, false, error);
    if (end < 0) {
      ok = false;
      break;
    }
    *reply = buf.substr(0, static_cast<size_t>(end) - 5);  // keeps the last line's "\r\n"
    break;
  }
  close(fd);
  if (!ok && error->find(ep.describe()) == std::string::npos &&
      error->find("answered") == std::string::npos)
    *error = fmt::format("admin {}: {}", ep.describe(), *error);
  return ok;
}

bool parse_stat_lines(std::string_view text, StatList* out) {
  while (!text.empty()) {
    size_t eol = text.find("\r\n");
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 2);
    if (line.empty()) continue;
    if (line.rfind("STAT ", 0) != 0) return false;
    line.remove_prefix(5);
    size_t sp = line.find(' ');
    std::string name(line.substr(0, sp));
    std::string value(sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1));
    out->emplace_back(std::move(name), std::move(value));
  }
  return true;
}

bool admin_stats(const AdminEndpoint& ep, std::string_view group, int timeout_ms, StatList* out,
                 std::string* error) {
  std::string req = group.empty() ? std::string("stats") : fmt::format("stats {}", group);
  std::string reply;
  if (!admin_call(ep, req, true, timeout_ms, &reply, error)) return false;
  out->clear();
  if (!parse_stat_lines(reply, out)) {
    *error = fmt::format("admin {}: unexpected reply to '{}'", ep.describe(), req);
    return false;
  }
  return true;
}

const std::string* find_stat(const StatList& stats, std::string_view name) {
  for (const auto& [n, v] : stats)
    if (n == name) return &v;
  return nullptr;
}

}  // namespace cachet::control
