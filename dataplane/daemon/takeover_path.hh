// The name of a running cachetd's takeover socket, derived from its admin socket: the one rule
// that cachetd (listening, and a successor connecting) and cachet-control (removing what a
// killed cachetd left) share. No dependencies, so control/ can include it.
#pragma once

#include <string>

namespace cachet::dataplane::takeover {

inline std::string socket_path(const std::string& admin_socket) {
  return admin_socket + ".takeover";
}

}  // namespace cachet::dataplane::takeover
