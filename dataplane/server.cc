// Server: the Handler that drivers call. Frames stream input into text- or binary-protocol
// requests (chosen per connection by its first byte, with per-connection swallow state), runs
// them through each worker's executors, and answers UDP datagrams with memcached's frame header.
#include "dataplane/server.hh"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/clock.hh"
#include "common/log.hh"
#include "dataplane/binary_executor.hh"
#include "dataplane/executor.hh"
#include "dataplane/protocol/binary_parser.hh"
#include "dataplane/protocol/text_parser.hh"
#include "dataplane/stats.hh"
#include "dataplane/udp_frame.hh"

namespace cachet::dataplane {

namespace {

// Slack over the item size limit for a request line still waiting for its newline (memcached
// reads lines in a 2 KB window; large multigets grow past it).
constexpr size_t kLineSlack = 2048;
// A worker's UDP reply buffer is given back when a reply left it larger than this.
constexpr size_t kUdpBufKeep = 256 * 1024;


struct alignas(64) WorkerCtx {
  WorkerCtx(ExecShared& shared, unsigned id) : exec(shared, id), bin(shared, exec.rules()) {}
  Executor exec;
  BinaryExecutor bin;
  common::ByteBuf udp_out;
  KeyHints hints[2];              // two bursts in flight (the driver's prefetch contract)
  KeyHints* answering = nullptr;  // the burst whose datagrams come now (stage 2)
};

// A connection's protocol: memcached decides from its first byte (0x80 = binary).
enum class Proto : uint8_t { unknown, text, binary };

// One stream connection.
struct Conn {
  Conn(unsigned w, bool a) : worker(w), admin(a) {}
  unsigned worker;
  bool admin;  // came in over the admin socket
  Proto proto = Proto::unknown;
  uint64_t swallow = 0;  // bytes of a refused data block still to discard
  // Replies held back while a refused data block is being swallowed: memcached sends nothing
  // until the whole block has arrived (its conn_swallow state). At most one call's output.
  std::string held;
  // Where in its key list the get at the front of the input stopped at the output limit
  // (ExecLimit); 0 when no get is suspended.
  size_t get_resume = 0;
};

// What one parse-and-execute step did with the input in front of it.
struct Step {
  enum Kind : uint8_t {
    ran,             // a request ran: it spanned `consumed` bytes, `swallow` more follow
    ran_then_close,  // as ran, and the connection closes once the replies are sent
    suspended,       // a get stopped at the output limit; it runs on from there, unconsumed
    need_more,       // no complete request yet
    close,           // close now
  } kind;
  size_t consumed = 0;
  uint64_t swallow = 0;
};

inline Step::Kind ran(Executor::After after) {
  return after == Executor::After::close ? Step::ran_then_close : Step::ran;
}

// Parses and runs the first text request in `rest`. Input still without a complete request
// past in_cap closes the connection.
inline Step text_step(WorkerCtx& w, std::string_view rest, common::ByteBuf& out, size_t in_cap,
                      bool admin, ExecLimit limit) {
  auto value_max = [&w](size_t key_len) { return w.exec.value_max(key_len); };
  text::ParseResult r = text::parse(rest, value_max);
  if (r.status == text::Status::need_more) {
    // A storage command waiting for its block is bounded by the item limit; anything else
    // still without a newline past the limit is junk.
    return {r.need == 0 && rest.size() > in_cap ? Step::close : Step::need_more};
  }
  if (r.status == text::Status::close) return {Step::close};
  const Executor::After after = w.exec.execute(r.req, out, admin, limit);
  if (after == Executor::After::suspended) return {Step::suspended};
  return {ran(after), r.consumed, r.swallow};
}

// Parses and runs the first binary request in `rest`.
inline Step binary_step(WorkerCtx& w, std::string_view rest, common::ByteBuf& out) {
  auto value_max = [&w](size_t key_len) { return w.exec.value_max(key_len); };
  binary::ParseResult r = binary::parse(rest, value_max);
  if (r.status == binary::ParseStatus::need_more) return {Step::need_more};
  if (r.status == binary::ParseStatus::close) return {Step::close};
  return {ran(w.bin.execute(r.req, out)), r.consumed, r.swallow};
}

// Feeds a connection's input to `one` (a protocol's parse and execute) request by request,
// swallowing refused data blocks and holding replies back while one is being swallowed, as
// memcached's conn_swallow does. Stops at out_limit. Shared by both stream protocols.
template <class One>
drivers::StreamStep pump(Conn& c, std::string_view in, common::ByteBuf& out, size_t out_limit,
                         One&& one) {
  drivers::StreamStep step;
  const size_t base = out.size();  // this call's replies start here
  size_t pos = 0;
  while (true) {
    if (c.swallow) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(c.swallow, in.size() - pos));
      pos += n;
      c.swallow -= n;
      if (c.swallow) break;
      if (!c.held.empty()) {
        out.append(c.held);
        c.held.clear();
      }
    }
    if (pos == in.size() || out.size() >= out_limit) break;
    Step s = one(in.substr(pos));
    if (s.kind > Step::ran_then_close) {
      step.close = s.kind == Step::close;
      break;
    }
    pos += s.consumed;
    c.swallow = s.swallow;
    if (s.kind == Step::ran_then_close) {
      step.close = true;
      break;
    }
  }
  if (c.swallow && out.size() > base) {
    c.held.append(out.data() + base, out.size() - base);
    out.truncate(base);
  }
  step.consumed = pos;
  return step;
}

}  // namespace

struct Server::Impl {
  Impl(store::Store& st, const Settings& se)
      : store(st),
        settings(se),
        tunables(se.tunables),
        board(st.options().workers),
        shared(st, se, tunables, board, common::now_unix()) {
    for (unsigned i = 0; i < board.workers(); ++i) {
      workers.push_back(std::make_unique<WorkerCtx>(shared, i));
    }
  }

  WorkerCtx& worker(unsigned i) { return *workers[i]; }

  store::Store& store;
  const Settings& settings;
  Tunables tunables;  // their single owner
  StatsBoard board;
  ExecShared shared;
  std::vector<std::unique_ptr<WorkerCtx>> workers;
};

Server::Server(store::Store& store, const Settings& settings)
    : impl_(std::make_unique<Impl>(store, settings)) {}

Server::~Server() = default;

void Server::add_driver(const drivers::Driver* driver, unsigned base) {
  for (ExecShared::DriverSlot& s : impl_->shared.drivers) {
    if (s.driver.load(std::memory_order_relaxed)) continue;
    s.base.store(base, std::memory_order_relaxed);
    s.driver.store(driver, std::memory_order_release);
    return;
  }
  common::log::error("Server::add_driver: more than {} drivers", impl_->shared.drivers.size());
  std::abort();
}

void Server::set_maintenance(maintenance::Engine* engine) {
  impl_->shared.maintenance.store(engine, std::memory_order_release);
}

Tunables& Server::tunables() { return impl_->tunables; }

void Server::worker_start(unsigned worker) {
  if (worker >= impl_->workers.size()) {
    // Sharing a worker's executor between threads would race: refuse loudly.
    common::log::error("dataplane worker {} started, but the store has {} worker handles",
                       worker, impl_->workers.size());
    std::abort();
  }
}

void* Server::stream_open(unsigned worker, bool admin) { return new Conn(worker, admin); }

void Server::stream_close(void* state) { delete static_cast<Conn*>(state); }

drivers::StreamStep Server::stream_data(void* state, std::string_view in, common::ByteBuf& out) {
  Conn& c = *static_cast<Conn*>(state);
  WorkerCtx& w = impl_->worker(c.worker);
  const size_t out_limit = impl_->settings.net.out_limit;
  if (c.proto != Proto::text) [[unlikely]] {
    if (c.proto == Proto::unknown) {
      if (in.empty()) return {};
      c.proto = static_cast<uint8_t>(in[0]) == binary::kRequestMagic ? Proto::binary : Proto::text;
    }
    if (c.proto == Proto::binary) {
      return pump(c, in, out, out_limit,
                  [&](std::string_view rest) { return binary_step(w, rest, out); });
    }
  }
  const size_t in_cap = impl_->store.options().item_size_max + kLineSlack;
  return pump(c, in, out, out_limit,
              [&](std::string_view rest) {
                return text_step(w, rest, out, in_cap, c.admin, {out_limit, &c.get_resume});
              });
}

// The keys of a burst's text datagrams (up to 16 per get, 512 in all): stage 0 prefetches
// every key's bucket and keeps the hashes, stage 1 every key's item, stage 2 hands the hashes
// to the executor for the datagrams that follow.
void Server::prefetch(unsigned worker, std::span<const std::string_view> burst, int stage) {
  constexpr size_t kKeysPerDatagram = 16;
  WorkerCtx& w = impl_->worker(worker);
  store::Store& st = impl_->store;
  KeyHints* mine = w.hints[0].owner == burst.data()   ? &w.hints[0]
                : w.hints[1].owner == burst.data() ? &w.hints[1]
                                                   : nullptr;
  if (stage == 1) {
    if (mine)
      for (size_t i = 0; i < mine->n; ++i) st.prefetch_item(mine->hashes[i]);
    return;
  }
  if (stage == 2) {
    w.answering = mine;
    if (mine) mine->at = 0;
    return;
  }
  // Stage 0: the burst's set, or the one not being answered.
  if (!mine) mine = w.answering == &w.hints[0] ? &w.hints[1] : &w.hints[0];
  mine->owner = burst.data();
  // Retrievals name their keys after the command; the commands that change one item name it
  // first (the store reads its bucket and the old item either way).
  auto keys_named = [](std::string_view cmd) -> size_t {
    static constexpr std::string_view kSingle[] = {
        "set",     "delete",  "incr",      "decr",      "touch",  "add",
        "replace", "cas",     "append",    "prepend",   "lease-get", "lease-set", "metaget"};
    if (cmd == "get" || cmd == "gets") return kKeysPerDatagram;
    return std::find(std::begin(kSingle), std::end(kSingle), cmd) != std::end(kSingle) ? 1 : 0;
  };
  std::string_view tok[text::kMaxTokens], rest;
  size_t n = 0;
  for (std::string_view in : burst) {
    if (in.size() <= udp::kHeaderSize) continue;
    std::string_view body = in.substr(udp::kHeaderSize);
    const size_t nl = body.find('\n');
    if (nl == std::string_view::npos) continue;
    const size_t ntok = text::tokenize(text::command_line(body, nl), tok, &rest) - 1;
    if (ntok < 2) continue;
    const size_t last = std::min(ntok - 1, keys_named(tok[0]));
    for (size_t i = 1; i <= last && n < KeyHints::kMax; ++i) {
      if (tok[i].size() > store::kKeyMax) break;
      mine->keys[n] = tok[i];
      mine->hashes[n++] = st.prefetch_bucket(tok[i]);
    }
  }
  mine->n = n;
}

bool Server::stream_idle(void* state) {
  const Conn& c = *static_cast<Conn*>(state);
  return c.swallow == 0 && c.held.empty() && c.get_resume == 0;
}

drivers::UdpDrop Server::datagram(unsigned worker, std::string_view in,
                                  drivers::DatagramSink& reply) {
  udp::FrameHeader h;
  if (drivers::UdpDrop why = udp::parse_request(in, &h); why != drivers::UdpDrop::none) return why;
  WorkerCtx& w = impl_->worker(worker);
  common::ByteBuf& out = w.udp_out;
  out.clear();
  const size_t cap = udp::kMaxDatagrams * udp::kMaxData;
  std::string_view body = in.substr(udp::kHeaderSize);
  // As memcached, each datagram picks its protocol by its first byte.
  const bool bin = !body.empty() && static_cast<uint8_t>(body[0]) == binary::kRequestMagic;
  size_t pos = 0;
  w.exec.hint(w.answering);
  // Each datagram stands alone: an incomplete request at its end is dropped, as memcached does.
  while (pos < body.size() && out.size() < cap) {
    std::string_view rest = body.substr(pos);
    Step s = bin ? binary_step(w, rest, out)
                 : text_step(w, rest, out, SIZE_MAX, false, {.out_limit = cap});
    if (s.kind > Step::ran_then_close) break;
    pos += s.consumed;
    pos += static_cast<size_t>(std::min<uint64_t>(s.swallow, body.size() - pos));
    if (s.kind == Step::ran_then_close) break;
  }
  w.exec.hint(nullptr);
  udp::for_each_datagram(h.request_id, out.view(), [&reply](std::string_view head,
                                                             std::string_view body) {
    reply.emit(head, body);
  });
  out.clear();
  out.shrink_if_empty(kUdpBufKeep);
  return drivers::UdpDrop::none;
}

}  // namespace cachet::dataplane
