// The I/O thread. Per connection: down -> connecting -> handshake (`version`) -> up. Replies
// arrive in request order, so the head packet in flight takes each answer line.
#include "control/invalidate/sender.hh"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>

#include <fmt/format.h>

#include "common/clock.hh"
#include "common/log.hh"
#include "control/invalidate/auditor.hh"
#include "control/invalidate/decoder.hh"
#include "control/invalidate/reply.hh"

namespace cachet::invalidate {

namespace log = common::log;

namespace {
int64_t mono_us() { return static_cast<int64_t>(common::mono_ns() / 1000); }
constexpr int64_t kRetryInitialMs = 100, kRetryMaxMs = 5000;
}  // namespace

struct Sender::Conn {
  enum State { down, connecting, handshake, up };
  explicit Conn(Server* srv) : s(srv), backoff(kRetryInitialMs, kRetryMaxMs) {}
  Server* s;
  int fd = -1;
  State state = down;
  std::string out;
  size_t out_off = 0;
  std::string in;
  std::deque<Batch> inflight;
  size_t head_replies = 0;
  int64_t deadline_us = 0;  // connect/handshake deadline
  int64_t retry_at_us = 0;  // next connection attempt while down
  int64_t up_since_us = 0;
  bool want_write = false;
  bool was_up = true;       // log the first failure after being up, then quietly retry
  control::Backoff backoff;
  mutable std::mutex info_mu;
  std::string last_error;
};

Sender::Sender(const Config& config, std::vector<Pool>* pools, Tracker* tracker,
               SpoolWriter* writer, Auditor* auditor, Stats* stats)
    : config_(config), pools_(pools), tracker_(tracker), writer_(writer), auditor_(auditor),
      stats_(stats) {
  for (Pool& p : *pools_)
    for (auto& s : p.servers) conns_.push_back(std::make_unique<Conn>(s.get()));
}

Sender::~Sender() { stop(); }

bool Sender::start(std::string* error) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || event_fd_ < 0) {
    *error = fmt::format("epoll/eventfd: {}", std::strerror(errno));
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &ev);
  thread_ = std::thread([this] { run(); });
  return true;
}

void Sender::stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  wake();
  thread_.join();
  for (auto& c : conns_)
    if (c->fd >= 0) ::close(c->fd);
  ::close(epoll_fd_);
  ::close(event_fd_);
}

void Sender::wake() {
  uint64_t one = 1;
  ssize_t r = ::write(event_fd_, &one, sizeof one);
  (void)r;
}

Sender::ServerState Sender::state_of(const Server* s) const {
  for (const auto& c : conns_) {
    if (c->s != s) continue;
    constexpr const char* kNames[] = {"down", "connecting", "handshake", "up"};
    std::lock_guard lock(c->info_mu);
    return {kNames[c->state], c->last_error};
  }
  return {"unknown", ""};
}

void Sender::watch(Conn& c, bool want_write) {
  if (c.fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (want_write ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0)
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev);
  c.want_write = want_write;
}

void Sender::start_connect(Conn& c, int64_t now) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(c.s->spec.port);
  if (int r = getaddrinfo(c.s->spec.host.c_str(), port.c_str(), &hints, &res); r != 0 || !res) {
    fail(c, fmt::format("cannot resolve {}: {}", c.s->spec.host, gai_strerror(r)), now);
    return;
  }
  c.fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const int r = c.fd < 0 ? -1 : connect(c.fd, res->ai_addr, res->ai_addrlen);
  const int e = errno;
  freeaddrinfo(res);
  if (r != 0 && e != EINPROGRESS) {
    fail(c, fmt::format("connect: {}", std::strerror(e)), now);
    return;
  }
  c.state = Conn::connecting;
  c.deadline_us = now + config_.batch_timeout_ms * 1000;
  c.in.clear();
  c.out.clear();
  c.out_off = 0;
  watch(c, true);
}

void Sender::fail(Conn& c, const std::string& reason, int64_t now, bool retry_now) {
  Server* s = c.s;
  if (c.state == Conn::up || c.was_up) {
    log::error("{}: down: {}; its deletes go to the spool {} until it answers", s->label(),
               reason, s->spool.path());
    s->stats.failures.add();
  } else {
    log::debug("{}: still down: {}", s->label(), reason);
  }
  c.was_up = false;
  {
    std::lock_guard lock(c.info_mu);
    c.last_error = reason;
  }
  if (c.fd >= 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
  }
  // Unanswered packets: replayed ones are still in the spool; the others go there, in order.
  bool rewound = false;
  for (Batch& b : c.inflight) {
    if (b.replay) {
      if (!rewound) s->spool.rewind();
      rewound = true;
    } else {
      writer_->submit(s, std::move(b));
    }
  }
  c.inflight.clear();
  c.head_replies = 0;
  c.state = Conn::down;
  s->up = false;
  s->stats.up.set(0);
  const int64_t ran_ms = c.up_since_us ? (now - c.up_since_us) / 1000 : 0;
  c.up_since_us = 0;
  c.retry_at_us = retry_now ? now : now + c.backoff.next_delay(ran_ms, 10000) * 1000;
}

void Sender::send_batch(Conn& c, Batch batch, int64_t now) {
  Server* s = c.s;
  const int64_t holdoff = s->holdoff_refused ? 0 : s->holdoff_s;
  for (const std::string& k : batch.keys) append_delete(&c.out, k, holdoff);
  batch.sent_us = now;
  s->stats.packets.add();
  s->stats.deletes_sent.add(batch.keys.size());
  stats_->record_batch(batch.keys.size());
  if (auditor_) auditor_->maybe_sample(s, batch);
  c.inflight.push_back(std::move(batch));
  write_out(c);
}

void Sender::write_out(Conn& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c.want_write) watch(c, true);
      return;
    }
    return;  // the error shows as EPOLLERR/EPOLLHUP or a read of 0
  }
  c.out.clear();
  c.out_off = 0;
  if (c.want_write) watch(c, false);
}

// One answer line; false when the connection failed on it.
bool Sender::on_line(Conn& c, std::string_view line, int64_t now) {
  Server* s = c.s;
  const Reply r = classify_reply(line);
  if (c.state == Conn::handshake) {
    if (r != Reply::version) {
      fail(c, fmt::format("answered '{}' to `version`", printable(line)), now);
      return false;
    }
    c.state = Conn::up;
    c.up_since_us = now;
    c.was_up = true;
    s->up = true;
    s->stats.up.set(1);
    {
      std::lock_guard lock(c.info_mu);
      c.last_error.clear();
    }
    log::info("{}: up ({}); {} deletes wait in its spool", s->label(), line,
              s->spool.pending_deletes());
    return true;
  }
  if (c.inflight.empty()) {
    fail(c, fmt::format("answered '{}' when nothing was asked", printable(line)), now);
    return false;
  }
  if (r == Reply::deleted || r == Reply::not_found) {
    (r == Reply::deleted ? s->stats.deleted : s->stats.not_found).add();
  } else if (r == Reply::client_error && s->holdoff_s > 0 && !s->holdoff_refused) {
    s->holdoff_refused = true;
    s->stats.holdoff_refused.add();
    log::error("{}: refuses `delete <key> {}` ('{}'): it gets plain deletes from now on (hold-off "
               "needs cachetd)", s->label(), s->holdoff_s, printable(line));
    fail(c, "refused the hold-off form of delete", now, true);
    return false;
  } else {
    fail(c, fmt::format("answered '{}' to a delete", printable(line)), now);
    return false;
  }
  Batch& head = c.inflight.front();
  if (++c.head_replies < head.keys.size()) return true;
  if (head.replay) {
    s->spool.consume(head.spool_end);
    s->stats.replayed.add(head.keys.size());
    s->stats.spool_bytes.set(s->spool.pending_bytes());
    s->stats.spool_deletes.set(s->spool.pending_deletes());
  } else {
    s->settle(head.end_pos);
    tracker_->advance();
  }
  c.inflight.pop_front();
  c.head_replies = 0;
  return true;
}

void Sender::read_replies(Conn& c, int64_t now) {
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    fail(c, n == 0 ? "closed the connection" : fmt::format("recv: {}", std::strerror(errno)), now);
    return;
  }
  size_t pos = 0;
  while (true) {
    const size_t eol = c.in.find("\r\n", pos);
    if (eol == std::string::npos) break;
    if (!on_line(c, std::string_view(c.in).substr(pos, eol - pos), now)) return;
    pos = eol + 2;
  }
  c.in.erase(0, pos);
  if (c.in.size() > kMaxReplyLine)
    fail(c, fmt::format("answered a line of more than {} bytes: '{}'", kMaxReplyLine,
                        printable(c.in)), now);
}

void Sender::on_event(Conn& c, uint32_t events, int64_t now) {
  if (c.state == Conn::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      fail(c, fmt::format("connect: {}", std::strerror(err ? err : ECONNREFUSED)), now);
      return;
    }
    c.state = Conn::handshake;
    c.deadline_us = now + config_.batch_timeout_ms * 1000;
    c.out = "version\r\n";
    c.out_off = 0;
    write_out(c);
    return;
  }
  if (events & EPOLLIN) read_replies(c, now);
  if (c.fd >= 0 && (events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN))
    fail(c, "connection error", now);
  if (c.fd >= 0 && (events & EPOLLOUT)) write_out(c);
}

void Sender::step(Conn& c, int64_t now) {
  Server* s = c.s;
  const size_t max_keys = static_cast<size_t>(config_.batch_max_keys);
  if (c.state == Conn::down && now >= c.retry_at_us && !stop_) start_connect(c, now);
  if ((c.state == Conn::connecting || c.state == Conn::handshake) && now >= c.deadline_us)
    fail(c, fmt::format("no answer within {} ms", config_.batch_timeout_ms), now);
  if (c.state == Conn::up && !c.inflight.empty() &&
      now - c.inflight.front().sent_us >= config_.batch_timeout_ms * 1000)
    fail(c, fmt::format("no answer to a packet within {} ms", config_.batch_timeout_ms), now);

  const bool spooling = c.state != Conn::up || s->spool_queued.load() > 0 ||
                        !s->spool.replay_done();
  Batch b;
  if (spooling) {
    // New deletes queue up behind the spool, so that the server sees them in order.
    while (s->take(max_keys, &b)) writer_->submit(s, std::move(b));
    while (c.state == Conn::up && c.inflight.size() < static_cast<size_t>(config_.batch_window)) {
      Batch r;
      r.replay = true;
      if (!s->spool.read_next(&r.keys, &r.spool_end)) break;
      send_batch(c, std::move(r), now);
    }
    return;
  }
  while (c.inflight.size() < static_cast<size_t>(config_.batch_window)) {
    const size_t queued = s->queued();
    if (queued == 0) break;
    const int64_t oldest = s->oldest_us();
    if (queued < max_keys && now < oldest + config_.batch_delay_us) break;
    if (!s->take(max_keys, &b)) break;
    send_batch(c, std::move(b), now);
  }
}

int64_t Sender::next_wakeup(const Conn& c, int64_t now) const {
  int64_t t = now + 100000;  // at least every 100 ms: timeouts, spool replay
  if (c.state == Conn::down) t = std::min(t, c.retry_at_us);
  if (c.state == Conn::connecting || c.state == Conn::handshake) t = std::min(t, c.deadline_us);
  if (c.state == Conn::up) {
    if (!c.inflight.empty())
      t = std::min(t, c.inflight.front().sent_us + config_.batch_timeout_ms * 1000);
    if (c.inflight.size() < static_cast<size_t>(config_.batch_window)) {
      const int64_t oldest = c.s->oldest_us();
      if (oldest) t = std::min(t, oldest + config_.batch_delay_us);
    }
  }
  return t;
}

void Sender::run() {
  epoll_event events[64];
  while (!stop_) {
    int64_t now = mono_us();
    int64_t wake_at = now + 100000;
    for (auto& c : conns_) {
      step(*c, now);
      wake_at = std::min(wake_at, next_wakeup(*c, now));
    }
    const int64_t wait_us = std::max<int64_t>(0, wake_at - mono_us());
    timespec ts{static_cast<time_t>(wait_us / 1000000), static_cast<long>(wait_us % 1000000) * 1000};
    const int n = epoll_pwait2(epoll_fd_, events, 64, &ts, nullptr);
    now = mono_us();
    for (int i = 0; i < n; ++i) {
      if (!events[i].data.ptr) {
        uint64_t v;
        ssize_t r = ::read(event_fd_, &v, sizeof v);
        (void)r;
        continue;
      }
      on_event(*static_cast<Conn*>(events[i].data.ptr), events[i].events, now);
    }
  }
}

}  // namespace cachet::invalidate
