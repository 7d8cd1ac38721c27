// The PostgreSQL logical replication stream on bytes: the walsender's CopyData frames (XLogData,
// primary keepalive, standby status update) and the pgoutput plugin's messages (protocol
// version 1 with `messages 'true'`: Begin, Commit, Relation, Insert, Update, Delete, Truncate,
// logical decoding Message). Pure parsing, no libpq, so it is unit tested and fuzzed alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cachet::invalidate::pg {

// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
inline constexpr int64_t kEpochOffsetUs = 946684800LL * 1000000;

std::string format_lsn(uint64_t lsn);  // "16/B374D848", as PostgreSQL prints it

// ---- replication protocol frames (inside CopyData)

struct XLogData {
  uint64_t start = 0, wal_end = 0;
  int64_t send_time = 0;
  std::string_view payload;  // one pgoutput message
};
struct Keepalive {
  uint64_t wal_end = 0;
  int64_t send_time = 0;
  bool reply_requested = false;
};
using Frame = std::variant<XLogData, Keepalive>;
bool parse_frame(std::string_view copy_data, Frame* out, std::string* error);

// A standby status update ('r'): written, flushed and applied positions and the client's clock
// (PostgreSQL epoch, microseconds).
std::string status_update(uint64_t written, uint64_t flushed, int64_t now_pg_us,
                          bool reply_requested);

// ---- pgoutput messages

struct Column {
  std::string name;
  uint32_t type_oid = 0;
  bool key = false;  // part of the replica identity
};
struct Relation {
  uint32_t id = 0;
  std::string schema, name;
  char replica_identity = 'd';  // pg_class.relreplident: d(efault) n(othing) f(ull) i(ndex)
  std::vector<Column> columns;
};
struct Value {
  char kind = 'n';  // 'n' NULL, 'u' unchanged TOASTed value (not sent), 't' text, 'b' binary
  std::string_view data;
};
using Tuple = std::vector<Value>;  // views into the message

struct Begin {
  uint64_t final_lsn = 0;
  int64_t commit_time = 0;
  uint32_t xid = 0;
};
struct Commit {
  uint64_t commit_lsn = 0, end_lsn = 0;
  int64_t commit_time = 0;
};
struct Message {
  bool transactional = false;
  uint64_t lsn = 0;
  std::string_view prefix, content;
};
// Insert ('I'), Update ('U') or Delete ('D'). old_kind is 'K' (replica identity columns only,
// the others NULL), 'O' (the whole old row, REPLICA IDENTITY FULL) or 0 (no old row).
struct Change {
  char op = 0;
  uint32_t relid = 0;
  char old_kind = 0;
  Tuple old_row, new_row;
};
struct Truncate {
  std::vector<uint32_t> relids;
};
// Origin ('O') and Type ('Y') messages, which carry nothing the daemon uses.
struct Ignored {
  char type = 0;
};
using Decoded = std::variant<Begin, Commit, Message, Relation, Change, Truncate, Ignored>;

// Parses one pgoutput message; false with *error on anything malformed or unknown.
bool parse_message(std::string_view msg, Decoded* out, std::string* error);

}  // namespace cachet::invalidate::pg
