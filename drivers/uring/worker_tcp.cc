// The worker's stream side: accept (with the -c limit), receive into provided buffers, feed
// the handler, one send per connection per loop iteration, back-pressure, and close.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "drivers/uring/conn.hh"
#include "drivers/uring/worker.hh"

namespace cachet::drivers::uring {

namespace {
constexpr char kTooMany[] = "ERROR Too many open connections\r\n";  // memcached's words
constexpr size_t kKeepBytes = 64 * 1024;  // an idle connection keeps buffers up to this size
}  // namespace

// ---- accept ----

void Worker::arm_accept(Listener* l) {
  io_uring_sqe* s = get_sqe();
  if (shared_.multishot)
    io_uring_prep_multishot_accept(s, l->fd, nullptr, nullptr, SOCK_CLOEXEC);
  else
    io_uring_prep_accept(s, l->fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, tag(l, kAccept));
  l->armed = true;
  ++inflight_;
}

void Worker::on_accept(Listener* l, int res, unsigned flags) {
  if (!(flags & IORING_CQE_F_MORE)) {
    l->armed = false;
    --inflight_;
  }
  if (res >= 0) {
    if (stopping_)
      close(res);
    else
      accepted(res, l->admin);
  }
  if (l->armed || stopping_ || handing_off_) return;
  if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
    // Out of descriptors or memory: try again shortly rather than spin.
    io_uring_sqe* s = get_sqe();
    io_uring_prep_timeout(s, &l->retry_after, 0, 0);
    io_uring_sqe_set_data64(s, tag(l, kAcceptRetry));
    l->retry_armed = true;
    ++inflight_;
    return;
  }
  arm_accept(l);
}

void Worker::on_accept_retry(Listener* l) {
  l->retry_armed = false;
  --inflight_;
  if (!stopping_ && !handing_off_ && !l->armed) arm_accept(l);
}

void Worker::accepted(int fd, bool admin) {
  if (shared_.conns.fetch_add(1, std::memory_order_relaxed) >= shared_.opts.max_conns) {
    shared_.conns.fetch_sub(1, std::memory_order_relaxed);
    reject(fd);
    return;
  }
  Conn* c = alloc_conn();
  c->fd = fd;
  c->live = true;
  c->admin = admin;
  Counters::add(counters_.accepted, 1);
  c->state = handler_->stream_open(hid_, admin);
  arm_recv(c);
}

// Over -c: tell the client as memcached does, then close (hard-linked so it closes even when
// the send fails).
void Worker::reject(int fd) {
  Counters::add(counters_.rejected, 1);
  if (io_uring_sq_space_left(&ring_) < 2) io_uring_submit(&ring_);
  io_uring_sqe* s = get_sqe();
  io_uring_prep_send(s, fd, kTooMany, sizeof kTooMany - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  io_uring_sqe_set_data64(s, kIgnore);
  s->flags |= IOSQE_IO_HARDLINK;
  s = get_sqe();
  io_uring_prep_close(s, fd);
  io_uring_sqe_set_data64(s, kIgnore);
}

Conn* Worker::alloc_conn() {
  if (Conn* c = free_conns_) {
    free_conns_ = c->next;
    c->next = nullptr;
    return c;
  }
  conns_.push_back(std::make_unique<Conn>());
  return conns_.back().get();
}

// ---- receive ----

void Worker::arm_recv(Conn* c) {
  io_uring_sqe* s = get_sqe();
  if (shared_.multishot) {
    io_uring_prep_recv_multishot(s, c->fd, nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = tcp_bufs_.group();
  } else {
    if (!c->rx) c->rx = std::make_unique<char[]>(shared_.tcp_buffer_size);
    io_uring_prep_recv(s, c->fd, c->rx.get(), shared_.tcp_buffer_size, 0);
  }
  io_uring_sqe_set_data64(s, tag(c, kRecv));
  c->recv_armed = true;
  ++inflight_;
}

void Worker::on_recv(Conn* c, int res, unsigned flags) {
  if (!(flags & IORING_CQE_F_MORE)) {
    c->recv_armed = false;
    c->recv_cancel = false;
    --inflight_;
  }
  if (res > 0) {
    const bool provided = flags & IORING_CQE_F_BUFFER;
    const auto bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    const char* data = provided ? tcp_bufs_.buffer(bid) : c->rx.get();
    Counters::add(counters_.bytes_read, static_cast<uint64_t>(res));
    if (!c->dead && !c->closing) ingest(c, {data, static_cast<size_t>(res)});
    if (provided) tcp_bufs_.recycle(bid);
  } else if (res == 0) {
    c->eof = true;
  } else if (res != -ENOBUFS && res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
    c->dead = true;  // reset by peer and the like
  }
  mark_dirty(c);
}

// New bytes: parse them where they lie when nothing is pending, else queue behind the rest.
void Worker::ingest(Conn* c, std::string_view data) {
  if (c->in.empty() && can_feed(c)) {
    size_t used = feed(c, data);
    if (used < data.size()) c->in.append(data.substr(used));
    c->feed_pending = !c->in.empty() && out_blocked(c);
  } else {
    c->in.append(data);
    c->feed_pending = true;
  }
}

// Offers input to the handler until it wants more bytes, asks to close, or fills `out`.
size_t Worker::feed(Conn* c, std::string_view in) {
  size_t used = 0;
  while (used < in.size() && can_feed(c)) {
    StreamStep st = handler_->stream_data(c->state, in.substr(used), c->out);
    used += std::min(st.consumed, in.size() - used);
    if (st.close) {
      c->closing = true;
      break;
    }
    if (st.consumed == 0) break;
  }
  return used;
}

bool Worker::out_blocked(const Conn* c) const {
  return c->out.size() + c->sending.size() >= out_limit_;
}

bool Worker::can_feed(const Conn* c) const { return !c->closing && !c->dead && !out_blocked(c); }

// ---- per-iteration service: feed, send, recv control, close ----

void Worker::mark_dirty(Conn* c) {
  if (c->dirty) return;
  c->dirty = true;
  c->next = dirty_;
  dirty_ = c;
}

void Worker::service_dirty() {
  while (Conn* c = dirty_) {
    dirty_ = c->next;
    c->next = nullptr;
    c->dirty = false;
    service(c);
  }
}

void Worker::service(Conn* c) {
  if (!c->live) return;
  if (c->feed_pending && can_feed(c)) {
    c->in.consume(feed(c, c->in.view()));
    c->feed_pending = !c->in.empty() && out_blocked(c);
  }
  if (!c->dead) start_send(c);

  const bool unsent = !c->out.empty() || !c->sending.empty();
  if (!c->dead && (c->closing || c->eof) && !unsent && !c->feed_pending) c->dead = true;

  // Receive while the handler can use bytes. Stop when replies pile up unsent AND unconsumed
  // input passes in_limit; input the handler waits on (a large value) is never paused. A
  // handoff stops receiving once the handler is at a request boundary.
  const bool idle = handing_off_ && handler_->stream_idle(c->state);
  const bool want_recv = !c->dead && !c->closing && !c->eof && !stopping_ && !idle &&
                         !(out_blocked(c) && c->in.size() >= in_limit_);
  if (want_recv && !c->recv_armed) {
    arm_recv(c);
  } else if (!want_recv && c->recv_armed && !c->recv_cancel) {
    cancel(tag(c, kRecv));
    c->recv_cancel = true;
  }

  if (c->dead) {
    if (c->send_inflight && !c->send_cancel) {
      cancel(tag(c, kSend));
      c->send_cancel = true;
    }
    if (!c->recv_armed && !c->send_inflight) release(c);
  } else if (idle && !c->closing && !c->eof && !c->recv_armed && !c->send_inflight && !unsent &&
             !c->feed_pending) {
    if (c->admin) {  // the successor serves its own admin socket
      c->dead = true;
      release(c);
    } else {
      detach(c);
    }
  }
}

// ---- send ----

// Hands all queued replies to the kernel in one send, unless one is already in flight
// (a single send per connection keeps the byte order).
void Worker::start_send(Conn* c) {
  if (c->send_inflight) return;
  if (c->sending.empty()) {
    if (c->out.empty()) return;
    std::swap(c->sending, c->out);
  }
  io_uring_sqe* s = get_sqe();
  io_uring_prep_send(s, c->fd, c->sending.data(), c->sending.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(s, tag(c, kSend));
  c->send_inflight = true;
  ++inflight_;
}

void Worker::on_send(Conn* c, int res) {
  c->send_inflight = false;
  c->send_cancel = false;
  --inflight_;
  if (res < 0) {
    c->dead = true;
  } else {
    Counters::add(counters_.bytes_written, static_cast<uint64_t>(res));
    const bool was_blocked = out_blocked(c);
    c->sending.consume(std::min(static_cast<size_t>(res), c->sending.size()));
    if (c->sending.empty()) c->sending.shrink_if_empty(kKeepBytes);
    if (was_blocked && !out_blocked(c) && !c->in.empty()) c->feed_pending = true;
  }
  mark_dirty(c);
}

// ---- handoff ----

// c sits at a request boundary with everything sent: its socket and unconsumed input go to the
// successor process; the handler forgets it as if it closed.
void Worker::detach(Conn* c) {
  detached_.emplace_back(c->fd, std::string(c->in.view()));
  c->fd = -1;
  c->in.clear();
  c->dead = true;
  release(c);
}

void Worker::adopt_stream(int fd, std::string pending) { adopted_.emplace_back(fd, std::move(pending)); }

// ---- close ----

// All requests of c are complete: close the socket, tell the handler, recycle the Conn.
void Worker::release(Conn* c) {
  if (c->fd < 0) {
    // handed off: the descriptor lives on in the successor
  } else if (stopping_) {
    close(c->fd);
  } else {
    io_uring_sqe* s = get_sqe();
    io_uring_prep_close(s, c->fd);
    io_uring_sqe_set_data64(s, kIgnore);
  }
  handler_->stream_close(c->state);
  Counters::add(counters_.closed, 1);
  shared_.conns.fetch_sub(1, std::memory_order_relaxed);

  c->fd = -1;
  c->state = nullptr;
  for (common::ByteBuf* b : {&c->in, &c->out, &c->sending}) {
    b->clear();
    b->shrink_if_empty(kKeepBytes);
  }
  c->live = c->recv_armed = c->recv_cancel = c->send_inflight = c->send_cancel = false;
  c->feed_pending = c->eof = c->closing = c->dead = c->admin = false;
  c->next = free_conns_;
  free_conns_ = c;
}

}  // namespace cachet::drivers::uring
