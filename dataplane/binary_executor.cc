// Executes binary-protocol requests: memcached 1.6.18's response packets, statuses, messages and
// counters for each opcode (proto_bin.c). Gets write straight into the output buffer.
#include "dataplane/binary_executor.hh"

#include <charconv>
#include <cstring>

#include "dataplane/stats_groups.hh"
#include "dataplane/version.hh"

namespace cachet::dataplane {

using binary::Cmd;
using binary::Opcode;
using binary::Request;
using binary::Status;

namespace {

constexpr size_t kHeader = binary::kHeaderSize;

inline void put16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v);
}
inline void put32(char* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
inline void put64(char* p, uint64_t v) {
  put32(p, static_cast<uint32_t>(v >> 32));
  put32(p + 4, static_cast<uint32_t>(v));
}

// memcached's add_bin_header: the request's opcode and opaque, datatype 0.
void put_header(char* p, const Request& q, Status st, uint8_t extlen, size_t keylen, size_t bodylen,
                uint64_t cas) {
  p[0] = static_cast<char>(binary::kResponseMagic);
  p[1] = static_cast<char>(q.opcode);
  put16(p + 2, static_cast<uint16_t>(keylen));
  p[4] = static_cast<char>(extlen);
  p[5] = 0;
  put16(p + 6, static_cast<uint16_t>(st));
  put32(p + 8, static_cast<uint32_t>(bodylen));
  std::memcpy(p + 12, &q.opaque, 4);
  put64(p + 16, cas);
}

// A response without extras or key: header and body.
void append_packet(common::ByteBuf& out, const Request& q, Status st, uint64_t cas,
                   std::string_view body) {
  put_header(out.prepare(kHeader), q, st, 0, 0, body.size(), cas);
  out.commit(kHeader);
  out.append(body);
}

// memcached's write_bin_error: the status and a message, sent even for quiet requests.
void append_error(common::ByteBuf& out, const Request& q, Status st, std::string_view msg = {}) {
  append_packet(out, q, st, 0, msg.empty() ? binary::status_text(st) : msg);
}

// memcached's write_bin_response: success, suppressed for quiet requests.
void append_ok(common::ByteBuf& out, const Request& q, uint64_t cas, std::string_view body = {}) {
  if (!q.quiet) append_packet(out, q, Status::ok, cas, body);
}

// A stat packet: the name as key, the value as body.
void append_stat_packet(common::ByteBuf& out, const Request& q, std::string_view name,
                        std::string_view value) {
  char* p = out.prepare(kHeader + name.size());
  put_header(p, q, Status::ok, 0, name.size(), name.size() + value.size(), 0);
  std::memcpy(p + kHeader, name.data(), name.size());
  out.commit(kHeader + name.size());
  out.append(value);
}

Mode mode_of(Opcode op) {
  switch (op) {
    case Opcode::add:
      return Mode::add;
    case Opcode::replace:
      return Mode::replace;
    case Opcode::append:
      return Mode::append;
    case Opcode::prepend:
      return Mode::prepend;
    default:
      return Mode::set;
  }
}

}  // namespace

BinaryExecutor::BinaryExecutor(ExecShared& shared, ItemRules& rules)
    : shared_(shared), rules_(rules) {}

Executor::After BinaryExecutor::execute(const Request& req, common::ByteBuf& out) {
  switch (req.cmd) {
    case Cmd::get:
    case Cmd::touch:
      retrieve(req, out);
      break;
    case Cmd::update:
      update(req, out);
      break;
    case Cmd::del:
      remove(req, out);
      break;
    case Cmd::delta:
      delta(req, out);
      break;
    case Cmd::quit:
      append_ok(out, req, 0);
      return Executor::After::close;
    case Cmd::flush:
      rules_.flush(req.exptime);
      append_ok(out, req, 0);
      break;
    case Cmd::noop:
      append_ok(out, req, 0);
      break;
    case Cmd::version:
      append_ok(out, req, 0, kVersion);
      break;
    case Cmd::stat:
      stat(req, out);
      break;
    case Cmd::unknown:
      append_error(out, req, Status::unknown_command);
      break;
    case Cmd::invalid:
      append_error(out, req, Status::einval);
      return Executor::After::close;
    case Cmd::bad_body:
      append_error(out, req, Status::unknown_command);
      return Executor::After::close;
  }
  return Executor::After::keep;
}

void BinaryExecutor::retrieve(const Request& req, common::ByteBuf& out) {
  // Extras (flags), then the key for GETK/GATK, then the value unless TOUCH.
  auto emit = [&out, &req](const store::ItemView& it) {
    const size_t klen = req.with_key ? it.key.size() : 0;
    const size_t vlen = req.with_value ? it.value.size() : 0;
    char* p = out.prepare(kHeader + 4 + klen);
    put_header(p, req, Status::ok, 4, klen, 4 + klen + vlen, it.cas);
    put32(p + kHeader, it.flags);
    std::memcpy(p + kHeader + 4, it.key.data(), klen);
    out.commit(kHeader + 4 + klen);
    out.append(it.value.data(), vlen);
    return true;
  };
  const uint64_t hash = store::Store::hash(req.key);
  bool hit;
  if (req.cmd == Cmd::touch) {
    auto emit_touched = [&emit](const store::ItemView& it) { emit(it); };
    ItemFn fn = emit_touched;
    hit = rules_.get_and_touch(req.key, hash, store_exptime(req.exptime), &fn);
  } else {
    hit = rules_.get(req.key, hash, out, emit);
  }
  if (hit || req.quiet) return;  // quiet gets report hits only
  if (!req.with_key) return append_error(out, req, Status::key_enoent);
  // GETK/GATK miss: the key, and no message.
  char* p = out.prepare(kHeader + req.key.size());
  put_header(p, req, Status::key_enoent, 0, req.key.size(), req.key.size(), 0);
  std::memcpy(p + kHeader, req.key.data(), req.key.size());
  out.commit(kHeader + req.key.size());
}

void BinaryExecutor::update(const Request& req, common::ByteBuf& out) {
  const bool is_set = req.base == Opcode::set;
  const bool concat = req.base == Opcode::append || req.base == Opcode::prepend;
  const uint64_t hash = store::Store::hash(req.key);
  if (req.too_large) {
    // Refused before its value is read; a set also loses the old value. Nothing is counted.
    if (is_set) rules_.drop(req.key, hash);
    return append_error(out, req, Status::e2big);
  }
  // A cas turns set/add/replace into cas; append/prepend compare it (memcached's rules).
  StoreArgs a{.mode = req.cas != 0 && !concat ? Mode::cas : mode_of(req.base), .cas_in = req.cas};
  uint64_t cas = 0;
  switch (rules_.update(req.key, hash, req.value, req.flags, store_exptime(req.exptime), a, &cas,
                        is_set)) {
    case StoreResult::stored:
      return append_ok(out, req, cas);
    case StoreResult::exists:
      return append_error(out, req, Status::key_eexists);
    case StoreResult::not_found:
      return append_error(out, req, Status::key_enoent);
    case StoreResult::not_stored:
      break;
    case StoreResult::too_large:
    case StoreResult::no_memory:
      // The store refused the item. memcached: set/add/replace fail to allocate it (not
      // counted); append/prepend fail to allocate the joined item (counted, "Not stored.").
      if (concat) {
        rules_.stats().cmd_set.add();
        break;
      }
      return append_error(out, req, Status::enomem, "Out of memory allocating item");
  }
  // complete_update_bin: NOT_STORED is reported per command.
  if (req.base == Opcode::add) return append_error(out, req, Status::key_eexists);
  if (req.base == Opcode::replace) return append_error(out, req, Status::key_enoent);
  append_error(out, req, Status::not_stored);
}

void BinaryExecutor::remove(const Request& req, common::ByteBuf& out) {
  // memcached deletes only an item whose cas matches; a mismatch is not counted.
  const DeleteArgs a{.has_cas = req.cas != 0, .cas_in = req.cas};
  switch (rules_.delete_item(req.key, store::Store::hash(req.key), a)) {
    case DeleteResult::deleted:
    case DeleteResult::invalidated:
      rules_.stats().delete_hits.add();
      return append_ok(out, req, 0);
    case DeleteResult::exists:
      return append_error(out, req, Status::key_eexists);
    case DeleteResult::not_found:
      rules_.stats().delete_misses.add();
      return append_error(out, req, Status::key_enoent);
  }
}

void BinaryExecutor::delta(const Request& req, common::ByteBuf& out) {
  // A miss creates the item holding `initial` unless the exptime says not to (memcached stores
  // it as an add, counted neither as a set nor as a miss); a cas must match.
  const bool create = req.exptime != binary::kNoCreate;
  const DeltaArgs a{.incr = req.base == Opcode::increment,
                    .delta = req.delta,
                    .cas_in = req.cas,
                    .vivify = create,
                    .initial = req.initial,
                    .vivify_exptime = create ? store_exptime(req.exptime) : 0};
  DeltaOut o;
  switch (rules_.delta(req.key, store::Store::hash(req.key), a, &o, !create)) {
    case DeltaResult::ok:
    case DeltaResult::created: {
      char body[8];
      put64(body, o.value);
      return append_ok(out, req, o.cas, std::string_view(body, 8));
    }
    case DeltaResult::exists:
      return append_error(out, req, Status::key_eexists);
    case DeltaResult::non_numeric:
      return append_error(out, req, Status::delta_badval);
    case DeltaResult::no_memory:
      return append_error(out, req, Status::enomem,
                          o.creating ? "Out of memory allocating new item"
                                     : "Out of memory incrementing value");
    case DeltaResult::not_found:
      return append_error(out, req, Status::key_enoent);
  }
}

void BinaryExecutor::stat(const Request& req, common::ByteBuf& out) {
  // process_bin_stat: "reset", "settings" and "detail" match as prefixes, the rest exactly.
  const std::string_view k = req.key;
  if (k.empty()) return stat_packets(req, "", out);
  if (k.starts_with("reset")) {
    reset_stats(shared_);
  } else if (k.starts_with("settings")) {
    return stat_packets(req, "settings", out);
  } else if (k.starts_with("detail")) {
    // Per-prefix stats are not kept (as the text protocol): on/off accepted, dump lists none.
    const std::string_view sub = k.substr(6);
    if (sub.starts_with(" dump")) {
      append_stat_packet(out, req, "detailed", "END\r\n");
    } else if (!sub.starts_with(" on") && !sub.starts_with(" off")) {
      return append_error(out, req, Status::key_enoent);
    }
  } else if (k == "items" || k == "slabs" || k == "sizes") {
    return stat_packets(req, k, out);
  } else {
    return append_error(out, req, Status::key_enoent);
  }
  append_stat_packet(out, req, "", "");  // the terminating packet
}

// The text of a stats group ("STAT <name> <value>" lines, "END"), one packet per line.
void BinaryExecutor::stat_packets(const Request& req, std::string_view group,
                                  common::ByteBuf& out) {
  text_.clear();
  append_stats_group(shared_, group, text_);
  std::string_view t = text_.view();
  constexpr std::string_view kStat = "STAT ";
  while (t.starts_with(kStat)) {
    size_t eol = t.find("\r\n");
    if (eol == std::string_view::npos) break;
    std::string_view line = t.substr(kStat.size(), eol - kStat.size());
    size_t sp = line.find(' ');
    std::string_view name = line.substr(0, sp);
    std::string_view value = sp == std::string_view::npos ? "" : line.substr(sp + 1);
    append_stat_packet(out, req, name, value);
    t.remove_prefix(eol + 2);
  }
  append_stat_packet(out, req, "", "");
  text_.clear();
  text_.shrink_if_empty(64u << 10);
}

}  // namespace cachet::dataplane
