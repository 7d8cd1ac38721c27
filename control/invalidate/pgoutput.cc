// pgoutput and walsender frames: big-endian fields read with bounds checks; every error names
// the message type and the field.
#include "control/invalidate/pgoutput.hh"

#include <cstring>

#include <fmt/format.h>

namespace cachet::invalidate::pg {

namespace {

// Reads big-endian fields from a byte span; a read past the end sets failed and yields 0.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool failed() const { return failed_; }
  bool done() const { return pos_ == b_.size(); }
  template <class T>
  T num() {
    if (b_.size() - pos_ < sizeof(T)) return fail<T>();
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v = v << 8 | static_cast<uint8_t>(b_[pos_ + i]);
    pos_ += sizeof(T);
    return static_cast<T>(v);
  }
  char byte() { return static_cast<char>(num<uint8_t>()); }
  std::string_view bytes(size_t n) {
    if (b_.size() - pos_ < n) return fail<std::string_view>();
    std::string_view v = b_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  std::string_view cstring() {
    const size_t end = b_.find('\0', pos_);
    if (end == std::string_view::npos) return fail<std::string_view>();
    std::string_view v = b_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return v;
  }
  std::string_view rest() {
    std::string_view v = b_.substr(pos_);
    pos_ = b_.size();
    return v;
  }

 private:
  template <class T>
  T fail() {
    failed_ = true;
    pos_ = b_.size();
    return T{};
  }
  std::string_view b_;
  size_t pos_ = 0;
  bool failed_ = false;
};

void put_be64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}

bool read_tuple(Reader& r, Tuple* out) {
  const auto n = r.num<uint16_t>();
  out->clear();
  out->reserve(n);
  for (uint16_t i = 0; i < n && !r.failed(); ++i) {
    Value v;
    v.kind = r.byte();
    if (v.kind == 't' || v.kind == 'b') {
      v.data = r.bytes(r.num<uint32_t>());
    } else if (v.kind != 'n' && v.kind != 'u') {
      return false;
    }
    out->push_back(v);
  }
  return !r.failed();
}

bool parse_change(char op, Reader& r, Change* c, std::string* error) {
  c->op = op;
  c->relid = r.num<uint32_t>();
  char tag = r.byte();
  if ((op == 'U' || op == 'D') && (tag == 'K' || tag == 'O')) {
    c->old_kind = tag;
    if (!read_tuple(r, &c->old_row)) {
      *error = fmt::format("pgoutput '{}': malformed old row", op);
      return false;
    }
    if (op == 'U') tag = r.byte();
  }
  if (op == 'D') {
    if (c->old_kind == 0) {
      *error = "pgoutput 'D': no old row ('K' or 'O')";
      return false;
    }
  } else if (tag != 'N' || !read_tuple(r, &c->new_row)) {
    *error = fmt::format("pgoutput '{}': malformed new row", op);
    return false;
  }
  return true;
}

}  // namespace

std::string format_lsn(uint64_t lsn) {
  return fmt::format("{:X}/{:X}", static_cast<uint32_t>(lsn >> 32), static_cast<uint32_t>(lsn));
}

bool parse_frame(std::string_view data, Frame* out, std::string* error) {
  Reader r(data);
  const char type = r.byte();
  if (type == 'w') {
    XLogData x;
    x.start = r.num<uint64_t>();
    x.wal_end = r.num<uint64_t>();
    x.send_time = r.num<int64_t>();
    x.payload = r.rest();
    if (r.failed() || x.payload.empty()) {
      *error = fmt::format("short XLogData frame ({} bytes)", data.size());
      return false;
    }
    *out = x;
    return true;
  }
  if (type == 'k') {
    Keepalive k;
    k.wal_end = r.num<uint64_t>();
    k.send_time = r.num<int64_t>();
    k.reply_requested = r.byte() != 0;
    if (r.failed()) {
      *error = fmt::format("short keepalive frame ({} bytes)", data.size());
      return false;
    }
    *out = k;
    return true;
  }
  *error = data.empty() ? std::string("empty CopyData frame")
                        : fmt::format("unknown replication frame type 0x{:02x}",
                                      static_cast<uint8_t>(type));
  return false;
}

std::string status_update(uint64_t written, uint64_t flushed, int64_t now_pg_us,
                          bool reply_requested) {
  std::string out(1, 'r');
  put_be64(out, written);
  put_be64(out, flushed);
  put_be64(out, flushed);  // applied: the daemon's work is done when it is flushed
  put_be64(out, static_cast<uint64_t>(now_pg_us));
  out.push_back(reply_requested ? 1 : 0);
  return out;
}

bool parse_message(std::string_view msg, Decoded* out, std::string* error) {
  Reader r(msg);
  const char type = r.byte();
  bool ok = true;
  switch (type) {
    case 'B': {
      Begin b;
      b.final_lsn = r.num<uint64_t>();
      b.commit_time = r.num<int64_t>();
      b.xid = r.num<uint32_t>();
      *out = b;
      break;
    }
    case 'C': {
      Commit c;
      r.num<uint8_t>();  // flags, unused
      c.commit_lsn = r.num<uint64_t>();
      c.end_lsn = r.num<uint64_t>();
      c.commit_time = r.num<int64_t>();
      *out = c;
      break;
    }
    case 'M': {
      Message m;
      m.transactional = (r.num<uint8_t>() & 1) != 0;
      m.lsn = r.num<uint64_t>();
      m.prefix = r.cstring();
      m.content = r.bytes(r.num<uint32_t>());
      *out = m;
      break;
    }
    case 'R': {
      Relation rel;
      rel.id = r.num<uint32_t>();
      rel.schema = r.cstring();
      rel.name = r.cstring();
      rel.replica_identity = r.byte();
      const auto n = r.num<uint16_t>();
      for (uint16_t i = 0; i < n && !r.failed(); ++i) {
        Column c;
        c.key = (r.num<uint8_t>() & 1) != 0;
        c.name = r.cstring();
        c.type_oid = r.num<uint32_t>();
        r.num<int32_t>();  // type modifier
        rel.columns.push_back(std::move(c));
      }
      *out = std::move(rel);
      break;
    }
    case 'I':
    case 'U':
    case 'D': {
      Change c;
      ok = parse_change(type, r, &c, error);
      *out = std::move(c);
      break;
    }
    case 'T': {
      Truncate t;
      const auto n = r.num<uint32_t>();
      r.num<uint8_t>();  // options (CASCADE, RESTART IDENTITY)
      for (uint32_t i = 0; i < n && !r.failed(); ++i) t.relids.push_back(r.num<uint32_t>());
      *out = std::move(t);
      break;
    }
    case 'O':
    case 'Y':
      *out = Ignored{type};
      return true;
    default:
      *error = msg.empty() ? std::string("empty pgoutput message")
                           : fmt::format("unknown pgoutput message type 0x{:02x}",
                                         static_cast<uint8_t>(type));
      return false;
  }
  if (ok && r.failed()) {
    *error = fmt::format("pgoutput '{}' message is truncated ({} bytes)", type, msg.size());
    return false;
  }
  if (ok && !r.done()) {
    *error = fmt::format("pgoutput '{}' message has {} trailing bytes", type, r.rest().size());
    return false;
  }
  return ok;
}

}  // namespace cachet::invalidate::pg
