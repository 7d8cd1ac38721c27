// A client of cachetd's admin channel: memcached's text protocol (`stats`, `verbosity N`,
// `slabs automove N`, `version`) over the unix admin socket, or over TCP when the cachetd in
// use has no --admin-socket yet. Blocking, every call bounded by a timeout.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachet::control {

struct AdminEndpoint {
  std::string unix_path;  // used when not empty
  std::string host;       // else TCP host:port
  uint16_t port = 0;
  std::string describe() const;
  bool valid() const { return !unix_path.empty() || port != 0; }
};

using StatList = std::vector<std::pair<std::string, std::string>>;

// Sends one request line (without "\r\n") and reads the reply: up to "END\r\n" when
// multi_line (stats), else one line. An error line (ERROR, CLIENT_ERROR, SERVER_ERROR) fails with
// it in *error. Returns the reply without its terminator.
bool admin_call(const AdminEndpoint& ep, std::string_view request, bool multi_line,
                int timeout_ms, std::string* reply, std::string* error);

// `stats [group]` as ordered (name, value) pairs.
bool admin_stats(const AdminEndpoint& ep, std::string_view group, int timeout_ms, StatList* out,
                 std::string* error);

// Parses "STAT name value\r\n" lines; false on any other line.
bool parse_stat_lines(std::string_view text, StatList* out);

// The value of a stat, or nullptr.
const std::string* find_stat(const StatList& stats, std::string_view name);

}  // namespace cachet::control
