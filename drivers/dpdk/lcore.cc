// The per-lcore poll loop, in the shape of DPDK's l2fwd/l3fwd: a per-lcore state struct made
// once, small named steps (take, fetch, answer, kernel exchange, drain) and the loop variant
// (exception port or not, checksum offload or not) chosen once at start-up. Bursts of 32 are
// prefetched ahead, ARP/ICMP answered in place, memcache datagrams handed to the dataplane
// with replies written into the request mbuf where they fit.
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_prefetch.h>

#include <cstring>
#include <memory>

#include "common/counter.hh"
#include "drivers/dpdk/impl.hh"

namespace cachet::drivers::dpdk {
namespace {

using common::bump;

// A queue's transmit batch: filled during a burst, sent at its end or when full.
class TxBatch {
 public:
  TxBatch(uint16_t port, uint16_t queue, std::atomic<uint64_t>* dropped)
      : port_(port), queue_(queue), dropped_(dropped) {}
  void add(rte_mbuf* m) {
    pkts_[n_++] = m;
    if (n_ == kBurst) flush();
  }
  void flush() {
    uint16_t sent = 0;
    // A few retries absorb a momentarily full ring; the rest is dropped, never blocked on.
    for (int tries = 0; sent < n_ && tries < 4; ++tries)
      sent = static_cast<uint16_t>(sent + rte_eth_tx_burst(port_, queue_, pkts_ + sent,
                                                           static_cast<uint16_t>(n_ - sent)));
    if (sent < n_) {
      dropped_->fetch_add(n_ - sent, std::memory_order_relaxed);
      rte_pktmbuf_free_bulk(pkts_ + sent, n_ - sent);
    }
    n_ = 0;
  }
  bool empty() const { return n_ == 0; }

 private:
  uint16_t port_, queue_;
  std::atomic<uint64_t>* dropped_;
  rte_mbuf* pkts_[kBurst];
  uint16_t n_ = 0;
};

// A received burst: its frames and what classify made of each.
struct Burst {
  rte_mbuf* bufs[kBurst];
  Classified cls[kBurst];
  std::string_view payloads[kBurst];  // of its memcache datagrams, for the dataplane's prefetch
  uint16_t n = 0;
  uint16_t udp = 0;  // payloads in use
  bool fetched = false;  // stage 1 of the dataplane's prefetch ran
  uint64_t tsc = 0;  // when it was received: the rate limiter's clock, read once per burst
};

// Everything one lcore's loop touches, made once before it starts (l2fwd's lcore_queue_conf).
struct Lcore {
  Lcore(DpdkDriver::Impl& d, unsigned w)
      : d(d),
        handler(*d.handler),
        w(w),
        port(d.opts.port),
        queue(static_cast<uint16_t>(w)),
        st(d.stats[w]),
        guard(*d.guards[w]),
        pool(d.pool_for_lcore(rte_lcore_id())),
        tx(port, queue, &st.tx_dropped),
        to_kernel(d.exc_port >= 0 ? static_cast<uint16_t>(d.exc_port) : 0, queue, &st.tx_dropped),
        ip_id(static_cast<uint16_t>(w << 12)),
        drain_tsc(rte_get_tsc_hz() / 10000),  // 100 us
        last_drain(rte_rdtsc()),
        last_loop(last_drain) {}

  DpdkDriver::Impl& d;
  Handler& handler;
  const unsigned w;       // worker index (the Handler's is d.worker_base + w)
  const uint16_t port, queue;
  LcoreStats& st;
  UdpGuard& guard;
  rte_mempool* pool;
  TxBatch tx, to_kernel;
  uint16_t ip_id;
  const uint64_t drain_tsc;
  uint64_t last_drain, last_loop;
  // Two bursts in flight: one is answered while the next one's lookups are being fetched.
  Burst bursts[2];
};

void drop(Lcore& l, rte_mbuf* m, Drop why) {
  bump(l.st.drops[static_cast<size_t>(why)]);
  rte_pktmbuf_free(m);
}

void send_rewritten(Lcore& l, rte_mbuf* m, size_t len, std::atomic<uint64_t>& counter) {
  m->data_len = static_cast<uint16_t>(len);
  m->pkt_len = static_cast<uint32_t>(len);
  bump(counter);
  bump(l.st.tx_packets);
  l.tx.add(m);
}

// Writes reply datagrams within the UDP policy's bound: the first into the request mbuf when
// it fits, then fresh mbufs.
class ReplySink final : public DatagramSink {
 public:
  ReplySink(Lcore& l, rte_mbuf* req, const Peer& peer) : l_(l), req_(req), peer_(peer) {}

  void emit(std::string_view head, std::string_view body) override {
    const size_t payload = head.size() + body.size();
    if (!l_.guard.reply_fits(sent_, payload)) return;
    const size_t frame = kUdpHeadroom + payload;
    rte_mbuf* m = nullptr;
    if (req_ && size_t{req_->buf_len} >= frame) {
      m = req_;
      req_ = nullptr;
      m->data_off = static_cast<uint16_t>(std::min<unsigned>(RTE_PKTMBUF_HEADROOM, m->buf_len - frame));
      m->ol_flags = 0;
    } else if (!(m = rte_pktmbuf_alloc(l_.pool))) {
      bump(l_.st.no_mbuf);
      return;
    }
    if (frame > static_cast<size_t>(m->buf_len - m->data_off)) {  // not at 1400-byte datagrams
      rte_pktmbuf_free(m);
      bump(l_.st.no_mbuf);  // no mbuf that holds it
      return;
    }
    uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
    std::memcpy(f + kUdpHeadroom, head.data(), head.size());
    std::memcpy(f + kUdpHeadroom + head.size(), body.data(), body.size());
    write_udp_headers(f, l_.d.me, peer_, payload, l_.ip_id++, !l_.d.opts.no_udp_checksum);
    m->data_len = static_cast<uint16_t>(frame);
    m->pkt_len = static_cast<uint32_t>(frame);
    m->nb_segs = 1;
    m->next = nullptr;
    bump(l_.st.replies);
    bump(l_.st.bytes_written, payload);
    bump(l_.st.tx_packets);
    bump(l_.st.tx_bytes, frame);
    l_.tx.add(m);
  }
  // The request mbuf, when no reply took it over.
  rte_mbuf* leftover() const { return req_; }

 private:
  Lcore& l_;
  rte_mbuf* req_;
  Peer peer_;
  size_t sent_ = 0;  // reply bytes so far (the policy's bound)
};

// Take: receives a burst, classifies every frame (header lines prefetched a few frames ahead)
// and hands the dataplane its requests so that it starts fetching their index buckets.
template <bool kRxChecksum>
void take(Lcore& l, Burst& b) {
  b.n = rte_eth_rx_burst(l.port, l.queue, b.bufs, kBurst);
  bump(b.n ? l.st.busy_polls : l.st.idle_polls);
  if (b.n == 0) return;
  b.tsc = rte_rdtsc();
  for (uint16_t i = 0; i < b.n && i < 4; ++i) rte_prefetch0(rte_pktmbuf_mtod(b.bufs[i], void*));
  uint16_t udp = 0;
  for (uint16_t i = 0; i < b.n; ++i) {
    if (i + 4 < b.n) rte_prefetch0(rte_pktmbuf_mtod(b.bufs[i + 4], void*));
    rte_mbuf* m = b.bufs[i];
    Classified& c = b.cls[i];
    bump(l.st.rx_packets);
    bump(l.st.rx_bytes, m->pkt_len);
    if (m->nb_segs != 1) {  // jumbo chains are never memcache requests here
      c = Classified{};
      c.why = Drop::ip_header;
      continue;
    }
    RxOffload hw{};
    if constexpr (kRxChecksum) {
      hw.ip_checksum_good = (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
      hw.l4_checksum_good = (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    }
    classify(rte_pktmbuf_mtod(m, uint8_t*), m->data_len, l.d.me, hw, c);
    if (c.verdict == Verdict::udp)
      b.payloads[udp++] = {rte_pktmbuf_mtod_offset(m, const char*, c.payload_off), c.payload_len};
  }
  b.udp = udp;
  b.fetched = false;
  if (udp) l.handler.prefetch(l.d.worker_base + l.w, {b.payloads, udp}, 0);
}

// Fetch: the dataplane's second stage for a taken burst, its items, now that the buckets are in.
void fetch_items(Lcore& l, Burst& b) {
  if (b.udp && !b.fetched) l.handler.prefetch(l.d.worker_base + l.w, {b.payloads, b.udp}, 1);
  b.fetched = true;
}

// One memcache datagram: the policy's rate, then the dataplane (its frame check and answer).
void answer_udp(Lcore& l, rte_mbuf* m, const Classified& c, uint64_t tsc) {
  bump(l.st.datagrams);
  bump(l.st.bytes_read, c.payload_len);
  if (!l.guard.admit(c.src_ip, tsc)) {
    rte_pktmbuf_free(m);
    return;
  }
  const char* p = rte_pktmbuf_mtod_offset(m, const char*, c.payload_off);
  ReplySink sink(l, m, Peer{c.src_mac, c.src_ip, c.src_port, c.dst_port});
  const UdpDrop why = l.handler.datagram(l.d.worker_base + l.w, {p, c.payload_len}, sink);
  if (why == UdpDrop::none)
    bump(l.st.requests);
  else
    l.guard.count(why);
  if (rte_mbuf* left = sink.leftover()) rte_pktmbuf_free(left);
}

// Answer: a burst's frames in order; halfway through, `next` fetches its items. The stage-2
// call comes right before the burst's datagrams, so the dataplane may reuse the hashes its
// stage 0 computed for exactly these views.
template <bool kExceptionPort>
void answer(Lcore& l, Burst& b, Burst& next) {
  if (b.udp) l.handler.prefetch(l.d.worker_base + l.w, {b.payloads, b.udp}, 2);
  for (uint16_t i = 0; i < b.n; ++i) {
    if (i == b.n / 2) fetch_items(l, next);
    rte_mbuf* m = b.bufs[i];
    uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
    const Classified& c = b.cls[i];
    switch (c.verdict) {
      case Verdict::drop:
        drop(l, m, c.why);
        break;
      case Verdict::arp_reply:
        send_rewritten(l, m, arp_reply_in_place(f, m->data_len, l.d.me), l.st.arp_replies);
        break;
      case Verdict::icmp_echo:
        send_rewritten(l, m, icmp_echo_reply_in_place(f, m->data_len), l.st.icmp_replies);
        break;
      case Verdict::arp_learn:
      case Verdict::exception:
        if constexpr (kExceptionPort) {
          bump(l.st.to_kernel);
          l.to_kernel.add(m);
        } else if (c.verdict == Verdict::arp_learn) {
          rte_pktmbuf_free(m);  // ARP replies and announcements need no answer
        } else {
          drop(l, m, Drop::no_exception_path);
        }
        break;
      case Verdict::udp:
        answer_udp(l, m, c, b.tsc);
        break;
    }
  }
  b.n = 0;
  b.udp = 0;
  fetch_items(l, next);  // when b was empty
}

// Kernel exchange: what the kernel sends out through the exception port (one RX queue, polled
// by lcore 0 only) goes out on the memcache port.
void kernel_exchange(Lcore& l) {
  rte_mbuf* from_kernel[kBurst];
  const uint16_t k = rte_eth_rx_burst(static_cast<uint16_t>(l.d.exc_port), 0, from_kernel, kBurst);
  for (uint16_t i = 0; i < k; ++i) {
    bump(l.st.from_kernel);
    bump(l.st.tx_packets);
    l.tx.add(from_kernel[i]);
  }
}

// Drain: TX batches go out after a busy pass, or every 100 us when the queue is quiet.
template <bool kExceptionPort>
void drain(Lcore& l, bool busy) {
  const uint64_t now = rte_rdtsc();
  bump(busy ? l.st.busy_tsc : l.st.idle_tsc, now - l.last_loop);
  l.last_loop = now;
  if (busy || now - l.last_drain > l.drain_tsc) {
    if (!l.tx.empty()) l.tx.flush();
    if constexpr (kExceptionPort)
      if (!l.to_kernel.empty()) l.to_kernel.flush();
    l.last_drain = now;
  }
}

// Where exception traffic goes on this lcore.
enum class Exception : uint8_t {
  none,             // no exception port: what is not ours is dropped
  forward,          // forwarded to the kernel
  forward_and_poll  // forwarded, and the kernel's replies are polled here (lcore 0)
};

// The loop. A burst waits for the next poll only when that poll brings frames: the answering
// of one burst hides the fetches of the next (buckets in take, items halfway through answer);
// on a quiet queue a burst is answered at once.
template <Exception kExc, bool kRxChecksum>
int poll_loop(Lcore& l) {
  constexpr bool kExcPort = kExc != Exception::none;
  Burst* fetching = &l.bursts[0];
  Burst* waiting = &l.bursts[1];
  while (!l.d.quit.load(std::memory_order_relaxed)) {
    take<kRxChecksum>(l, *fetching);
    const bool busy = fetching->n || waiting->n;
    answer<kExcPort>(l, *waiting, *fetching);
    std::swap(fetching, waiting);
    if constexpr (kExc == Exception::forward_and_poll) kernel_exchange(l);
    drain<kExcPort>(l, busy);
  }
  answer<kExcPort>(l, *waiting, *fetching);  // taken already: answered, not leaked
  l.tx.flush();
  if constexpr (kExcPort) l.to_kernel.flush();
  return 0;
}

using LoopFn = int (*)(Lcore&);
// [exception mode][checksum offload]
constexpr LoopFn kLoops[3][2] = {
    {poll_loop<Exception::none, false>, poll_loop<Exception::none, true>},
    {poll_loop<Exception::forward, false>, poll_loop<Exception::forward, true>},
    {poll_loop<Exception::forward_and_poll, false>, poll_loop<Exception::forward_and_poll, true>},
};

// Announces our address (lcore 0, once).
void announce(Lcore& l) {
  if (rte_mbuf* m = rte_pktmbuf_alloc(l.pool)) {
    const size_t n = gratuitous_arp(rte_pktmbuf_mtod(m, uint8_t*), l.d.me);
    m->data_len = static_cast<uint16_t>(n);
    m->pkt_len = static_cast<uint32_t>(n);
    l.tx.add(m);
    l.tx.flush();
  }
}

}  // namespace

int DpdkDriver::Impl::lcore_main() {
  const unsigned w = static_cast<unsigned>(rte_lcore_index(static_cast<int>(rte_lcore_id())));
  auto l = std::make_unique<Lcore>(*this, w);  // bursts and their slots: off the thread's stack
  handler->worker_start(worker_base + w);
  if (w == 0) announce(*l);
  const Exception exc = exc_port < 0 ? Exception::none
                        : w == 0     ? Exception::forward_and_poll
                                     : Exception::forward;
  return kLoops[static_cast<size_t>(exc)][rx_csum ? 1 : 0](*l);
}

}  // namespace cachet::drivers::dpdk
