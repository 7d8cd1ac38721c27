// Executes binary-protocol requests: memcached 1.6.18's response packets, statuses, messages and
// counters for each opcode (proto_bin.c). Gets write straight into the output buffer.
#include "dataplane/binary_executor.hh"

#include <charconv>
#include <cstring>

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

store::Mode mode_of(Opcode op) {
  switch (op) {
    case Opcode::add:
      return store::Mode::add;
    case Opcode::replace:
      return store::Mode::replace;
    case Opcode::append:
      return store::Mode::append;
    case Opcode::prepend:
      return store::Mode::prepend;
    default:
      return store::Mode::set;
  }
}

}  // namespace

BinaryExecutor::BinaryExecutor(ExecShared& shared, unsigned worker)
    : shared_(shared),
      ops_(shared.store, shared.store.worker(worker), shared.board.worker(worker)) {}

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
      ops_.flush(req.exptime);
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

BinaryExecutor::Peek BinaryExecutor::peek(std::string_view key, std::string* value) {
  Peek pk;
  ops_.store().get(ops_.worker(), key, unused_, [&pk, value](const store::ItemView& it) {
    pk = Peek{true, it.cas, it.flags, it.exptime};
    if (value) value->assign(it.value);
  });
  unused_.clear();
  return pk;
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
  };
  const bool hit = req.cmd == Cmd::touch
                       ? ops_.get_and_touch(req.key, store_exptime(req.exptime), out, emit)
                       : ops_.get(req.key, out, emit);
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
  if (req.too_large) {
    // Refused before its value is read; a set also loses the old value. Nothing is counted.
    if (is_set) ops_.store().remove(ops_.worker(), req.key);
    return append_error(out, req, Status::e2big);
  }
  if (req.cas != 0 && concat) return update_with_cas(req, out);
  const store::Mode mode = req.cas != 0 ? store::Mode::cas : mode_of(req.base);
  uint64_t cas = 0;
  switch (ops_.update(mode, req.key, req.value, req.flags, store_exptime(req.exptime), req.cas,
                      &cas, is_set)) {
    case store::StoreResult::stored:
      return append_ok(out, req, cas);
    case store::StoreResult::exists:
      return append_error(out, req, Status::key_eexists);
    case store::StoreResult::not_found:
      return append_error(out, req, Status::key_enoent);
    case store::StoreResult::not_stored:
      break;
    case store::StoreResult::too_large:
    case store::StoreResult::no_memory:
      // The store refused the item. memcached: set/add/replace fail to allocate it (not
      // counted); append/prepend fail to allocate the joined item (counted, "Not stored.").
      if (concat) {
        ops_.stats().cmd_set.add();
        break;
      }
      return append_error(out, req, Status::enomem, "Out of memory allocating item");
  }
  // complete_update_bin: NOT_STORED is reported per command.
  if (req.base == Opcode::add) return append_error(out, req, Status::key_eexists);
  if (req.base == Opcode::replace) return append_error(out, req, Status::key_enoent);
  append_error(out, req, Status::not_stored);
}

// APPEND/PREPEND with a cas: memcached refuses unless the item's cas matches. The store offers
// no compare for append, so the joined value is written with a cas store against the cas that
// was read: it is stored only if nothing changed in between.
void BinaryExecutor::update_with_cas(const Request& req, common::ByteBuf& out) {
  ops_.stats().cmd_set.add();
  Peek pk = peek(req.key, &scratch_);
  Status st = Status::not_stored;
  if (pk.hit && pk.cas != req.cas) {
    st = Status::key_eexists;
  } else if (pk.hit &&
             scratch_.size() + req.value.size() <= ops_.store().value_max(req.key.size())) {
    if (req.base == Opcode::append) {
      scratch_.append(req.value);
    } else {
      scratch_.insert(0, req.value);
    }
    uint64_t cas = 0;
    store::StoreResult r = ops_.store().store(ops_.worker(), store::Mode::cas, req.key, scratch_,
                                              pk.flags, pk.exptime, req.cas, &cas);
    if (r == store::StoreResult::stored) {
      st = Status::ok;
      append_ok(out, req, cas);
    } else if (r == store::StoreResult::exists) {
      st = Status::key_eexists;
    }
  }
  scratch_.clear();
  if (scratch_.capacity() > (64u << 10)) scratch_.shrink_to_fit();
  if (st != Status::ok) append_error(out, req, st);
}

void BinaryExecutor::remove(const Request& req, common::ByteBuf& out) {
  if (req.cas != 0) {
    // memcached deletes only an item whose cas matches; a mismatch is not counted.
    Peek pk = peek(req.key, nullptr);
    if (pk.hit && pk.cas != req.cas) return append_error(out, req, Status::key_eexists);
  }
  if (ops_.remove(req.key)) return append_ok(out, req, 0);
  append_error(out, req, Status::key_enoent);
}

void BinaryExecutor::delta(const Request& req, common::ByteBuf& out) {
  const bool incr = req.base == Opcode::increment;
  if (req.cas != 0) {
    Peek pk = peek(req.key, nullptr);
    if (pk.hit && pk.cas != req.cas) return append_error(out, req, Status::key_eexists);
  }
  uint64_t value = 0;
  uint64_t cas = 0;
  const bool create = req.exptime != binary::kNoCreate;
  switch (ops_.delta(req.key, incr, req.delta, &value, &cas, !create)) {
    case store::DeltaResult::ok: {
      char body[8];
      put64(body, value);
      return append_ok(out, req, cas, std::string_view(body, 8));
    }
    case store::DeltaResult::non_numeric:
      return append_error(out, req, Status::delta_badval);
    case store::DeltaResult::no_memory:
      return append_error(out, req, Status::enomem, "Out of memory incrementing value");
    case store::DeltaResult::not_found:
      if (create) return create_counter(req, out);
      return append_error(out, req, Status::key_enoent);
  }
}

// An incr/decr miss that creates the item with the initial value (memcached stores it as an
// add, counted neither as a set nor as a miss).
void BinaryExecutor::create_counter(const Request& req, common::ByteBuf& out) {
  char digits[20];
  auto end = std::to_chars(digits, digits + sizeof digits, req.initial).ptr;
  uint64_t cas = 0;
  switch (ops_.store().store(ops_.worker(), store::Mode::add, req.key,
                             std::string_view(digits, static_cast<size_t>(end - digits)), 0,
                             store_exptime(req.exptime), 0, &cas)) {
    case store::StoreResult::stored: {
      char body[8];
      put64(body, req.initial);
      return append_ok(out, req, cas, std::string_view(body, 8));
    }
    case store::StoreResult::too_large:
    case store::StoreResult::no_memory:
      return append_error(out, req, Status::enomem, "Out of memory allocating new item");
    default:
      return append_error(out, req, Status::not_stored);
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
