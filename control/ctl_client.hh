// cachetctl's side of the control API: one JSON request line per connection, progress lines,
// then the reply; and the exit statuses cachetctl documents.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace cachet::control {

// cachetctl's exit statuses (docs/CONTROL.md).
enum Exit : int {
  kExitOk = 0,
  kExitFailed = 1,     // the operation failed (cachetd not serving, upgrade failed, ...)
  kExitUsage = 2,      // bad command line, unknown key, bad value, read-only key
  kExitNoControl = 3,  // no control process answers on the socket
  kExitRefused = 4,    // upgrade refused: the new cachetd cannot read the arena's layout
};

// The exit status for a reply's "code" ("" or absent when ok).
int exit_status_for(const nlohmann::json& reply);

// Sends req to the control socket and returns the final reply. Progress lines ({"progress":..})
// go to on_progress. Each line must arrive within idle_timeout_ms. A connection failure gives
// {"ok":false,"code":"no_control","error":"..."}.
nlohmann::json control_call(const std::string& socket_path, const nlohmann::json& req,
                            int idle_timeout_ms,
                            const std::function<void(const nlohmann::json&)>& on_progress = {});

}  // namespace cachet::control
