// Server: the Handler that drivers call. Frames stream input into text-protocol requests (with
// per-connection swallow state), runs them through each worker's executor, and answers UDP
// datagrams with memcached's frame header.
#include "dataplane/server.hh"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/clock.hh"
#include "common/log.hh"
#include "dataplane/executor.hh"
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
  WorkerCtx(ExecShared& shared, unsigned id) : exec(shared, id) {}
  Executor exec;
  common::ByteBuf udp_out;
};

// One stream connection.
struct Conn {
  explicit Conn(unsigned w) : worker(w) {}
  unsigned worker;
  uint64_t swallow = 0;  // bytes of a refused data block still to discard
  // Replies held back while a refused data block is being swallowed: memcached sends nothing
  // until the whole block has arrived (its conn_swallow state). At most one call's output.
  std::string held;
};

}  // namespace

struct Server::Impl {
  Impl(store::Store& st, Settings& se)
      : store(st),
        settings(se),
        board(st.options().workers),
        shared(st, se, board, common::now_unix()) {
    for (unsigned i = 0; i < board.workers(); ++i) {
      workers.push_back(std::make_unique<WorkerCtx>(shared, i));
    }
  }

  WorkerCtx& worker(unsigned i) { return *workers[i]; }

  store::Store& store;
  Settings& settings;
  StatsBoard board;
  ExecShared shared;
  std::vector<std::unique_ptr<WorkerCtx>> workers;
};

Server::Server(store::Store& store, Settings& settings)
    : impl_(std::make_unique<Impl>(store, settings)) {}

Server::~Server() = default;

void Server::set_driver(const drivers::Driver* driver) {
  impl_->shared.driver.store(driver, std::memory_order_release);
}

void Server::worker_start(unsigned worker) {
  if (worker >= impl_->workers.size()) {
    // Sharing a worker's executor between threads would race: refuse loudly.
    common::log::error("dataplane worker {} started, but the store has {} worker handles",
                       worker, impl_->workers.size());
    std::abort();
  }
}

void* Server::stream_open(unsigned worker) { return new Conn(worker); }

void Server::stream_close(void* state) { delete static_cast<Conn*>(state); }

drivers::StreamStep Server::stream_data(void* state, std::string_view in, common::ByteBuf& out) {
  Conn& c = *static_cast<Conn*>(state);
  WorkerCtx& w = impl_->worker(c.worker);
  const size_t out_limit = impl_->settings.net.out_limit;
  const size_t in_cap = impl_->store.options().item_size_max + kLineSlack;
  auto value_max = [&w](size_t key_len) { return w.exec.value_max(key_len); };
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
    text::ParseResult r = text::parse(in.substr(pos), value_max);
    if (r.status == text::Status::need_more) {
      // A storage command waiting for its block is bounded by the item limit; anything else
      // still without a newline past the limit is junk.
      if (r.need == 0 && in.size() - pos > in_cap) step.close = true;
      break;
    }
    if (r.status == text::Status::close) {
      step.close = true;
      break;
    }
    pos += r.consumed;
    c.swallow = r.swallow;
    if (w.exec.execute(r.req, out) == Executor::After::close) {
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

void Server::datagram(unsigned worker, std::string_view in, drivers::DatagramSink& reply) {
  std::optional<udp::FrameHeader> h = udp::parse_request(in);
  if (!h) return;
  WorkerCtx& w = impl_->worker(worker);
  common::ByteBuf& out = w.udp_out;
  out.clear();
  auto value_max = [&w](size_t key_len) { return w.exec.value_max(key_len); };
  const size_t cap = udp::kMaxDatagrams * udp::kMaxData;
  std::string_view body = in.substr(udp::kHeaderSize);
  size_t pos = 0;
  // Each datagram stands alone: an incomplete request at its end is dropped, as memcached does.
  while (pos < body.size() && out.size() < cap) {
    text::ParseResult r = text::parse(body.substr(pos), value_max);
    if (r.status != text::Status::ready) break;
    pos += r.consumed;
    pos += static_cast<size_t>(std::min<uint64_t>(r.swallow, body.size() - pos));
    if (w.exec.execute(r.req, out) == Executor::After::close) break;
  }
  udp::for_each_datagram(h->request_id, out.view(),
                         [&reply](std::string_view d) { reply.emit(d); });
  out.clear();
  out.shrink_if_empty(kUdpBufKeep);
}

}  // namespace cachet::dataplane
