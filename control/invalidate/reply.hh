// memcached's answers to what the daemon sends (delete, version, set, gets), classified from
// one reply line, and the delete request lines it writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cachet::invalidate {

enum class Reply {
  deleted,       // DELETED
  not_found,     // NOT_FOUND
  version,       // VERSION <text>
  stored,        // STORED
  value,         // VALUE <key> <flags> <bytes> [<cas>]
  end,           // END
  error,         // ERROR
  client_error,  // CLIENT_ERROR <text>
  server_error,  // SERVER_ERROR <text>
  garbage,       // anything else
};

// Classifies one line (without "\r\n").
Reply classify_reply(std::string_view line);
const char* reply_name(Reply r);

// Appends "delete <key>\r\n", or "delete <key> <holdoff_s>\r\n" when holdoff_s > 0.
void append_delete(std::string* out, std::string_view key, int64_t holdoff_s);

// Longest reply line the daemon accepts before it calls the peer's answer garbage.
inline constexpr size_t kMaxReplyLine = 2048;

}  // namespace cachet::invalidate
