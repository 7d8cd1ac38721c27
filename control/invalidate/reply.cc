// Reply lines: exact matches for the fixed answers, prefixes for those with text.
#include "control/invalidate/reply.hh"

namespace cachet::invalidate {

namespace {
bool starts(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
}  // namespace

Reply classify_reply(std::string_view line) {
  if (line == "DELETED") return Reply::deleted;
  if (line == "NOT_FOUND") return Reply::not_found;
  if (line == "STORED") return Reply::stored;
  if (line == "END") return Reply::end;
  if (line == "ERROR") return Reply::error;
  if (starts(line, "VERSION ")) return Reply::version;
  if (starts(line, "VALUE ")) return Reply::value;
  if (starts(line, "CLIENT_ERROR")) return Reply::client_error;
  if (starts(line, "SERVER_ERROR")) return Reply::server_error;
  return Reply::garbage;
}

const char* reply_name(Reply r) {
  constexpr const char* kNames[] = {"DELETED", "NOT_FOUND", "VERSION", "STORED", "VALUE",
                                    "END", "ERROR", "CLIENT_ERROR", "SERVER_ERROR", "garbage"};
  return kNames[static_cast<int>(r)];
}

void append_delete(std::string* out, std::string_view key, int64_t holdoff_s) {
  out->append("delete ");
  out->append(key);
  if (holdoff_s > 0) {
    out->push_back(' ');
    out->append(std::to_string(holdoff_s));
  }
  out->append("\r\n");
}

}  // namespace cachet::invalidate
