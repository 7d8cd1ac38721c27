// Executes text-protocol requests: memcached 1.6.18's replies and counters for each command.
// The get and set paths allocate nothing: replies are written straight into the output buffer.
#include "dataplane/executor.hh"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "dataplane/format.hh"
#include "dataplane/slabs_admin.hh"
#include "dataplane/protocol/replies.hh"
#include "dataplane/stats_groups.hh"
#include "dataplane/version.hh"

namespace cachet::dataplane {

using text::Cmd;
using text::Request;

using namespace reply;

namespace {

constexpr int kMaxVerbosity = 2;          // memcached's MAX_VERBOSITY_LEVEL
constexpr uint32_t kMaxSlabClasses = 64;  // memcached's MAX_NUMBER_OF_SLAB_CLASSES

Mode mode_of(Cmd c) {
  switch (c) {
    case Cmd::add: return Mode::add;
    case Cmd::replace: return Mode::replace;
    case Cmd::append: return Mode::append;
    case Cmd::prepend: return Mode::prepend;
    case Cmd::cas: return Mode::cas;
    default: return Mode::set;
  }
}

}  // namespace

Executor::Executor(ExecShared& shared, unsigned worker)
    : shared_(shared),
      store_(shared.store),
      stats_(shared.board.worker(worker)),
      rules_(shared.store, shared.store.worker(worker), stats_, shared.tunables),
      meta_(rules_),
      lease_(rules_, worker) {}

void Executor::reply(const Request& req, common::ByteBuf& out, std::string_view line) {
  if (!req.noreply) out.append(line);
}

Executor::After Executor::execute(const Request& req, common::ByteBuf& out, bool admin,
                                  ExecLimit limit) {
  if (!req.error.empty()) {
    if (req.cmd == Cmd::flush_all) stats_.cmd_flush.add();
    if (req.cmd == Cmd::lease_set) stats_.cmd_lease_set.add();
    reply(req, out, req.error);
    return After::keep;
  }
  switch (req.cmd) {
    case Cmd::get:
    case Cmd::gets:
    case Cmd::gat:
    case Cmd::gats:
      if (retrieve(req, out, limit)) return After::suspended;
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
    case Cmd::del: {
      const DeleteArgs a{.holdoff = req.number};
      reply(req, out,
            rules_.remove(req.key, hash_of(req.key), a) == DeleteResult::deleted ? kDeleted
                                                                                 : kNotFound);
      break;
    }
    case Cmd::touch:
      reply(req, out,
            rules_.get_and_touch(req.key, hash_of(req.key), store_exptime(req.exptime), nullptr)
                ? kTouched
                : kNotFound);
      break;
    case Cmd::flush_all:
      rules_.flush(req.exptime);
      reply(req, out, kOk);
      break;
    case Cmd::version:
      out.append("VERSION ");
      out.append(kVersion);
      out.append(kCrlf);
      break;
    case Cmd::verbosity: {
      std::string error;  // in range once clamped, as memcached clamps it
      shared_.tunables.set("verbosity",
                           static_cast<int64_t>(std::min<uint64_t>(req.number, kMaxVerbosity)),
                           &error);
      reply(req, out, kOk);
      break;
    }
    case Cmd::quit:
      return After::close;
    case Cmd::shutdown:
      out.append(kShutdownOff);
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
      out.append(kMn);
      break;
    case Cmd::meta:
      meta_.execute(req, out);
      break;
    case Cmd::slabs:
      slabs_command(req, shared_, out);
      break;
    case Cmd::lease_get:
    case Cmd::lease_set:
    case Cmd::metaget:
      lease_.execute(req, hash_of(req.key), out);
      break;
    case Cmd::tunable:
      if (!admin) {
        out.append(kError);  // a client port has no such command
      } else {
        tunable_cmd(req, out);
      }
      break;
    case Cmd::error:
      out.append(kError);
      break;
  }
  return After::keep;
}

// tunable <name>: "VALUE <n>"; tunable <name> <value>: OK, or CLIENT_ERROR naming the problem.
void Executor::tunable_cmd(const Request& req, common::ByteBuf& out) {
  std::string error;
  if (req.nargs == 1) {
    const TunableValues v = shared_.tunables.values();
#define CACHET_X(name, def, lo, hi, desc)     \
  if (req.args[0] == #name) {                 \
    out.append("VALUE ");                     \
    append_dec_signed(out, v.name);           \
    return out.append(kCrlf);                 \
  }
    CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
    check_tunable(req.args[0], 0, &error);
  } else if (shared_.tunables.set(req.args[0], req.args[1], &error)) {
    return out.append(kOk);
  }
  out.append("CLIENT_ERROR ");
  out.append(error);
  out.append(kCrlf);
}

bool Executor::retrieve(const Request& req, common::ByteBuf& out, ExecLimit limit) {
  const bool touch = req.cmd == Cmd::gat || req.cmd == Cmd::gats;
  const bool with_cas = req.cmd == Cmd::gets || req.cmd == Cmd::gats;
  const uint32_t exptime = touch ? store_exptime(req.exptime) : 0;
  // "VALUE <key> <flags> <bytes>[ <cas>]\r\n" then the value and its "\r\n", in one piece.
  auto emit = [&out, with_cas](const store::ItemView& it) {
    append_value(out, "VALUE", it.key, 0, it.flags, it.value, with_cas, it.cas);
    return true;
  };
  auto emit_touched = [&emit](const store::ItemView& it) { emit(it); };
  ItemFn touched = emit_touched;
  std::string_view keys = req.keys;
  auto next_key = [&keys](size_t* pos) {
    while (*pos < keys.size() && keys[*pos] == ' ') ++*pos;
    size_t end = keys.find(' ', *pos);
    if (end == std::string_view::npos) end = keys.size();
    std::string_view key = keys.substr(*pos, end - *pos);
    *pos = end;
    return key;
  };
  auto look_up = [&](std::string_view key) {  // appends the key's VALUE block to out, if any
    if (touch) {
      rules_.get_and_touch(key, hash_of(key), exptime, &touched);
    } else {
      rules_.get(key, hash_of(key), out, emit);
    }
  };
  size_t pos = limit.resume ? *limit.resume : 0;
  if (pos == 0) {
    // memcached looks up (counts, touches) the keys before one that is too long, drops what
    // they produced and answers with the error alone.
    for (size_t p = 0, at = 0; p < keys.size(); at = p) {
      if (next_key(&p).size() <= text::kKeyMax) continue;
      const size_t mark = out.size();
      for (size_t q = 0; q < at;) {
        std::string_view key = next_key(&q);
        if (key.empty()) break;
        look_up(key);
        out.truncate(mark);  // at most one item held at a time
      }
      out.append(kBadFormat);
      return false;
    }
  }
  while (true) {
    std::string_view key = next_key(&pos);
    if (key.empty()) break;
    look_up(key);
    if (out.size() >= limit.out_limit && keys.find_first_not_of(' ', pos) != keys.npos) {
      if (limit.resume) *limit.resume = pos;
      return true;
    }
  }
  if (limit.resume) *limit.resume = 0;
  out.append(kEnd);
  return false;
}

void Executor::update(const Request& req, common::ByteBuf& out) {
  const bool is_set = req.cmd == Cmd::set;
  const uint64_t hash = hash_of(req.key);
  if (req.too_large) {
    // As memcached: a set that cannot be stored must not leave the old value behind.
    stats_.store_too_large.add();
    if (is_set) rules_.drop(req.key, hash);
    return reply(req, out, kTooLarge);
  }
  if (req.bad_chunk) {
    stats_.cmd_set.add();
    return reply(req, out, kBadChunk);
  }
  const StoreArgs a{.mode = mode_of(req.cmd), .cas_in = req.cmd == Cmd::cas ? req.number : 0};
  switch (rules_.update(req.key, hash, req.data, req.flags, store_exptime(req.exptime), a,
                        nullptr, is_set)) {
    case StoreResult::stored:
      return reply(req, out, kStored);
    case StoreResult::not_stored:
      return reply(req, out, kNotStored);
    case StoreResult::exists:
      return reply(req, out, kExists);
    case StoreResult::not_found:
      return reply(req, out, kNotFound);
    case StoreResult::too_large:
      stats_.store_too_large.add();
      return reply(req, out, kTooLarge);
    case StoreResult::no_memory:
      stats_.store_no_memory.add();
      return reply(req, out, kNoMemory);
  }
}

void Executor::arithmetic(const Request& req, common::ByteBuf& out) {
  const DeltaArgs a{.incr = req.cmd == Cmd::incr, .delta = req.number};
  DeltaOut o;
  switch (rules_.delta(req.key, hash_of(req.key), a, &o, true)) {
    case DeltaResult::ok:
    case DeltaResult::created:
      if (!req.noreply) append_dec_line(out, o.value);
      return;
    case DeltaResult::not_found:
    case DeltaResult::exists:
      return reply(req, out, kNotFound);
    case DeltaResult::non_numeric:
      return reply(req, out, kNonNumeric);
    case DeltaResult::no_memory:
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
    out.append(kReset);
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
      out.append(kBadLine);
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
