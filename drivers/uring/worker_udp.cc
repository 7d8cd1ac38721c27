// The worker's datagram side: recvmsg (multishot from the UDP buffer group, or a few single-shot
// ones), one handler call per datagram, and replies as sendmsg to the sender.
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/clock.hh"
#include "drivers/uring/conn.hh"
#include "drivers/uring/worker.hh"

namespace cachet::drivers::uring {

namespace {

// Replies to the sender of the datagram being handled, from the socket it arrived on, within
// the policy's reply bound.
class ReplySink final : public DatagramSink {
 public:
  ReplySink(Worker* w, UdpGuard& guard, UdpSocket* sock, const sockaddr* to, socklen_t len)
      : w_(w), guard_(guard), sock_(sock), to_(to), len_(len) {}
  void emit(std::string_view head, std::string_view body) override {
    if (guard_.reply_fits(sent_, head.size() + body.size()))
      w_->udp_send(sock_, to_, len_, head, body);
  }

 private:
  Worker* w_;
  UdpGuard& guard_;
  UdpSocket* sock_;
  const sockaddr* to_;
  socklen_t len_;
  size_t sent_ = 0;
};

}  // namespace

void Worker::arm_udp(UdpRecv* r) {
  io_uring_sqe* s = get_sqe();
  r->mh = {};
  if (shared_.multishot) {
    r->mh.msg_namelen = sizeof(sockaddr_storage);  // layout of each buffer: header, name, payload
    io_uring_prep_recvmsg_multishot(s, r->sock->fd, &r->mh, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = udp_bufs_.group();
  } else {
    r->iov = {r->buf.get(), kUdpBufferSize};
    r->mh.msg_name = &r->from;
    r->mh.msg_namelen = sizeof r->from;
    r->mh.msg_iov = &r->iov;
    r->mh.msg_iovlen = 1;
    io_uring_prep_recvmsg(s, r->sock->fd, &r->mh, 0);
  }
  io_uring_sqe_set_data64(s, tag(r, kUdpRecv));
  r->armed = true;
  ++inflight_;
}

void Worker::on_udp_recv(UdpRecv* r, int res, unsigned flags) {
  if (!(flags & IORING_CQE_F_MORE)) {
    r->armed = false;
    --inflight_;
  }
  if (flags & IORING_CQE_F_BUFFER) {
    const auto bid = static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    char* buf = udp_bufs_.buffer(bid);
    io_uring_recvmsg_out* o = res >= 0 ? io_uring_recvmsg_validate(buf, res, &r->mh) : nullptr;
    if (o && !stopping_ && !(o->flags & MSG_TRUNC)) {
      const char* payload = static_cast<const char*>(io_uring_recvmsg_payload(o, &r->mh));
      size_t len = io_uring_recvmsg_payload_length(o, res, &r->mh);
      socklen_t name_len = o->namelen <= sizeof(sockaddr_storage) ? o->namelen : 0;
      deliver(r->sock, {payload, len},
              static_cast<const sockaddr*>(io_uring_recvmsg_name(o)), name_len);
    }
    udp_bufs_.recycle(bid);
  } else if (res >= 0 && !shared_.multishot && !stopping_ && !(r->mh.msg_flags & MSG_TRUNC)) {
    deliver(r->sock, {r->buf.get(), static_cast<size_t>(res)},
            reinterpret_cast<const sockaddr*>(&r->from), r->mh.msg_namelen);
  }
  if (!r->armed && !stopping_ && !handing_off_) arm_udp(r);
}

void Worker::deliver(UdpSocket* sock, std::string_view payload, const sockaddr* from,
                     socklen_t len) {
  Counters::add(counters_.datagrams_in, 1);
  Counters::add(counters_.bytes_read, payload.size());
  if (len == 0) return;  // no one to answer
  if (udp_guard_.limits_rate() &&
      !udp_guard_.admit(udp_source_key(from, len), common::mono_ns()))
    return;
  ReplySink sink(this, udp_guard_, sock, from, len);
  if (UdpDrop why = handler_->datagram(hid_, payload, sink); why != UdpDrop::none)
    udp_guard_.count(why);
}

void Worker::udp_send(UdpSocket* sock, const sockaddr* to, socklen_t to_len,
                      std::string_view head, std::string_view body) {
  UdpSend* s = free_sends_;
  if (s) {
    free_sends_ = s->next;
  } else {
    udp_sends_.push_back(std::make_unique<UdpSend>());
    s = udp_sends_.back().get();
  }
  std::memcpy(&s->to, to, to_len);
  s->data.clear();
  s->data.append(head);
  s->data.append(body);
  s->iov = {s->data.data(), s->data.size()};
  s->mh = {};
  s->mh.msg_name = &s->to;
  s->mh.msg_namelen = to_len;
  s->mh.msg_iov = &s->iov;
  s->mh.msg_iovlen = 1;
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_sendmsg(sqe, sock->fd, &s->mh, 0);
  io_uring_sqe_set_data64(sqe, tag(s, kUdpSend));
  ++inflight_;
}

void Worker::on_udp_send(UdpSend* s, int res) {
  --inflight_;
  if (res >= 0) {
    Counters::add(counters_.datagrams_out, 1);
    Counters::add(counters_.bytes_written, static_cast<uint64_t>(res));
  }
  s->next = free_sends_;
  free_sends_ = s;
}

}  // namespace cachet::drivers::uring
