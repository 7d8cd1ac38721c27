// Executes text-protocol requests: memcached 1.6.18's replies and counters for each command.
// The get and set paths allocate nothing: replies are written straight into the output buffer.
#include "dataplane/executor.hh"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "dataplane/format.hh"
#include "dataplane/slabs_admin.hh"
#include "dataplane/store_ops.hh"
#include "dataplane/version.hh"

namespace cachet::dataplane {

using text::Cmd;
using text::Request;

namespace {

constexpr std::string_view kStored = "STORED\r\n";
constexpr std::string_view kNotStored = "NOT_STORED\r\n";
constexpr std::string_view kExists = "EXISTS\r\n";
constexpr std::string_view kNotFound = "NOT_FOUND\r\n";
constexpr std::string_view kDeleted = "DELETED\r\n";
constexpr std::string_view kTouched = "TOUCHED\r\n";
constexpr std::string_view kOk = "OK\r\n";
constexpr std::string_view kEnd = "END\r\n";
constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache\r\n";
constexpr std::string_view kNoMemory = "SERVER_ERROR out of memory storing object\r\n";
constexpr std::string_view kBadChunk = "CLIENT_ERROR bad data chunk\r\n";
constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format\r\n";
constexpr std::string_view kNonNumeric =
    "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
constexpr std::string_view kDeltaNoMemory = "SERVER_ERROR out of memory\r\n";
constexpr std::string_view kError = "ERROR\r\n";
constexpr int kMaxVerbosity = 2;          // memcached's MAX_VERBOSITY_LEVEL
constexpr uint32_t kMaxSlabClasses = 64;  // memcached's MAX_NUMBER_OF_SLAB_CLASSES

store::Mode mode_of(Cmd c) {
  switch (c) {
    case Cmd::add: return store::Mode::add;
    case Cmd::replace: return store::Mode::replace;
    case Cmd::append: return store::Mode::append;
    case Cmd::prepend: return store::Mode::prepend;
    case Cmd::cas: return store::Mode::cas;
    default: return store::Mode::set;
  }
}

}  // namespace

Executor::Executor(ExecShared& shared, unsigned worker)
    : shared_(shared),
      store_(shared.store),
      worker_(shared.store.worker(worker)),
      stats_(shared.board.worker(worker)),
      meta_(store_, worker_, stats_) {}

void Executor::reply(const Request& req, common::ByteBuf& out, std::string_view line) {
  if (!req.noreply) out.append(line);
}

Executor::After Executor::execute(const Request& req, common::ByteBuf& out) {
  if (!req.error.empty()) {
    if (req.cmd == Cmd::flush_all) stats_.cmd_flush.add();
    reply(req, out, req.error);
    return After::keep;
  }
  switch (req.cmd) {
    case Cmd::get:
    case Cmd::gets:
    case Cmd::gat:
    case Cmd::gats:
      retrieve(req, out);
      break;
    case Cmd::set:
    case Cmd::add:
    case Cmd::replace:
    case Cmd::append:
    case Cmd::prepend:
    case Cmd::cas:
      update(req, out);
      break;
    case Cmd::incr:
    case Cmd::decr:
      arithmetic(req, out);
      break;
    case Cmd::del:
      reply(req, out, ops().remove(req.key) ? kDeleted : kNotFound);
      break;
    case Cmd::touch:
      reply(req, out, ops().touch(req.key, store_exptime(req.exptime)) ? kTouched : kNotFound);
      break;
    case Cmd::flush_all:
      ops().flush(req.exptime);
      reply(req, out, kOk);
      break;
    case Cmd::version:
      out.append("VERSION ");
      out.append(kVersion);
      out.append("\r\n");
      break;
    case Cmd::verbosity:
      std::atomic_ref<int>(shared_.settings.verbosity)
          .store(static_cast<int>(std::min<uint64_t>(req.number, kMaxVerbosity)));
      reply(req, out, kOk);
      break;
    case Cmd::quit:
      return After::close;
    case Cmd::shutdown:
      out.append("ERROR: shutdown not enabled\r\n");
      break;
    case Cmd::stats:
      stats_cmd(req, out);
      break;
    case Cmd::cache_memlimit:
      // The arena's size is fixed when it is created (memcached with preallocated memory
      // answers the same): only the current limit is "adjusted".
      if (req.number < 8) {
        reply(req, out, "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n");
      } else if (req.number > 1000000000) {
        reply(req, out, "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n");
      } else if (req.number == store_.options().memory_mb) {
        reply(req, out, kOk);
      } else {
        reply(req, out, "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n");
      }
      break;
    case Cmd::mn:
      out.append("MN\r\n");
      break;
    case Cmd::meta:
      meta_.execute(req, out);
      break;
    case Cmd::slabs:
      slabs_command(req, store_, shared_.settings, out);
      break;
    case Cmd::error:
      out.append(kError);
      break;
  }
  return After::keep;
}

void Executor::retrieve(const Request& req, common::ByteBuf& out) {
  const bool touch = req.cmd == Cmd::gat || req.cmd == Cmd::gats;
  const bool with_cas = req.cmd == Cmd::gets || req.cmd == Cmd::gats;
  const uint32_t exptime = touch ? store_exptime(req.exptime) : 0;
  StoreOps ops = this->ops();
  const size_t start = out.size();
  // "VALUE <key> <flags> <bytes>[ <cas>]\r\n" then the value and its "\r\n", in one piece.
  auto emit = [&out, with_cas](const store::ItemView& it) {
    char* p = out.prepare(6 + it.key.size() + 1 + 10 + 1 + 20 + 1 + 20 + 2);
    char* q = p;
    std::memcpy(q, "VALUE ", 6);
    q += 6;
    std::memcpy(q, it.key.data(), it.key.size());
    q += it.key.size();
    *q++ = ' ';
    q = std::to_chars(q, q + 10, it.flags).ptr;
    *q++ = ' ';
    q = std::to_chars(q, q + 20, it.value.size()).ptr;
    if (with_cas) {
      *q++ = ' ';
      q = std::to_chars(q, q + 20, it.cas).ptr;
    }
    *q++ = '\r';
    *q++ = '\n';
    out.commit(static_cast<size_t>(q - p));
    out.append(it.value.data(), it.value.size() + 2);
  };
  std::string_view keys = req.keys;
  size_t pos = 0;
  while (pos < keys.size()) {
    if (keys[pos] == ' ') {
      ++pos;
      continue;
    }
    size_t end = keys.find(' ', pos);
    if (end == std::string_view::npos) end = keys.size();
    std::string_view key = keys.substr(pos, end - pos);
    pos = end;
    if (key.size() > text::kKeyMax) {
      // memcached drops what this get produced so far and answers with the error alone.
      out.truncate(start);
      out.append(kBadFormat);
      return;
    }
    if (touch) {
      ops.get_and_touch(key, exptime, out, emit);
    } else {
      ops.get(key, out, emit);
    }
  }
  out.append(kEnd);
}

void Executor::update(const Request& req, common::ByteBuf& out) {
  const bool is_set = req.cmd == Cmd::set;
  if (req.too_large) {
    // As memcached: a set that cannot be stored must not leave the old value behind.
    stats_.store_too_large.add();
    if (is_set) store_.remove(worker_, req.key);
    return reply(req, out, kTooLarge);
  }
  if (req.bad_chunk) {
    stats_.cmd_set.add();
    return reply(req, out, kBadChunk);
  }
  switch (ops().update(mode_of(req.cmd), req.key, req.data, req.flags,
                       store_exptime(req.exptime), req.number, nullptr, is_set)) {
    case store::StoreResult::stored:
      return reply(req, out, kStored);
    case store::StoreResult::not_stored:
      return reply(req, out, kNotStored);
    case store::StoreResult::exists:
      return reply(req, out, kExists);
    case store::StoreResult::not_found:
      return reply(req, out, kNotFound);
    case store::StoreResult::too_large:
      stats_.store_too_large.add();
      return reply(req, out, kTooLarge);
    case store::StoreResult::no_memory:
      stats_.store_no_memory.add();
      return reply(req, out, kNoMemory);
  }
}

void Executor::arithmetic(const Request& req, common::ByteBuf& out) {
  const bool incr = req.cmd == Cmd::incr;
  uint64_t value = 0;
  switch (ops().delta(req.key, incr, req.number, &value, nullptr, true)) {
    case store::DeltaResult::ok:
      if (!req.noreply) append_dec_line(out, value);
      return;
    case store::DeltaResult::not_found:
      return reply(req, out, kNotFound);
    case store::DeltaResult::non_numeric:
      return reply(req, out, kNonNumeric);
    case store::DeltaResult::no_memory:
      return reply(req, out, kDeltaNoMemory);
  }
}

void Executor::stats_cmd(const Request& req, common::ByteBuf& out) {
  if (req.nargs == 0) {
    append_stats_group(shared_, "", out);
    return;
  }
  std::string_view sub = req.args[0];
  if (sub == "reset") {
    reset_stats(shared_);
    out.append("RESET\r\n");
  } else if (sub == "detail") {
    // Per-prefix stats are not kept: on/off are accepted, dump lists nothing.
    std::string_view arg = req.nargs >= 2 ? req.args[1] : std::string_view();
    if (arg == "on" || arg == "off") {
      out.append(kOk);
    } else if (arg == "dump") {
      out.append(kEnd);
    } else {
      out.append("CLIENT_ERROR usage: stats detail on|off|dump\r\n");
    }
  } else if (sub == "cachedump") {
    uint32_t id = 0, limit = 0;
    if (req.nargs < 3) {
      out.append("CLIENT_ERROR bad command line\r\n");
    } else if (!text::safe_strtoul(req.args[1], &id) || !text::safe_strtoul(req.args[2], &limit)) {
      out.append(kBadFormat);
    } else if (id >= kMaxSlabClasses) {
      out.append("CLIENT_ERROR Illegal slab id\r\n");
    } else {
      out.append(kEnd);  // item dumps are not offered
    }
  } else if (sub == "conns") {
    out.append(kEnd);  // per-connection listing is not offered
  } else if (!append_stats_group(shared_, sub, out)) {  // settings, items, slabs, sizes
    out.append(kError);
  }
}

}  // namespace cachet::dataplane
