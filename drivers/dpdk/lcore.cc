// The per-lcore poll loop: bursts of 32 from this lcore's RX queue, prefetch ahead, ARP/ICMP
// answered in place, memcache datagrams handed to the dataplane with replies written into the
// request mbuf where they fit, TX batched per burst with a drain timer, exception traffic
// to and from the kernel.
#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_prefetch.h>

#include <cstring>

#include "common/counter.hh"
#include "drivers/dpdk/impl.hh"
#include "drivers/dpdk/src_limiter.hh"

namespace cachet::drivers::dpdk {
namespace {

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

using common::bump;

// Writes reply datagrams: the first into the request mbuf when it fits, then fresh mbufs.
class ReplySink final : public DatagramSink {
 public:
  ReplySink(DpdkDriver::Impl& d, LcoreStats& st, TxBatch& tx, rte_mempool* pool, rte_mbuf* req,
            const Peer& peer, uint16_t& ip_id)
      : d_(d), st_(st), tx_(tx), pool_(pool), req_(req), peer_(peer), ip_id_(ip_id) {}

  void emit(std::string_view head, std::string_view body) override {
    const size_t payload = head.size() + body.size();
    if (bytes_ + payload > d_.opts.reply_max) {
      bump(st_.reply_over_policy);
      return;
    }
    size_t frame = kUdpHeadroom + payload;
    rte_mbuf* m = nullptr;
    if (req_ && size_t{req_->buf_len} >= frame) {
      m = req_;
      req_ = nullptr;
      m->data_off = static_cast<uint16_t>(std::min<unsigned>(RTE_PKTMBUF_HEADROOM, m->buf_len - frame));
      m->ol_flags = 0;
    } else if (!(m = rte_pktmbuf_alloc(pool_))) {
      bump(st_.no_mbuf);
      return;
    }
    if (frame > static_cast<size_t>(m->buf_len - m->data_off)) {  // cannot happen at 1400
      rte_pktmbuf_free(m);
      bump(st_.reply_over_policy);
      return;
    }
    uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
    std::memcpy(f + kUdpHeadroom, head.data(), head.size());
    std::memcpy(f + kUdpHeadroom + head.size(), body.data(), body.size());
    write_udp_headers(f, d_.me, peer_, payload, ip_id_++, !d_.opts.no_udp_checksum);
    m->data_len = static_cast<uint16_t>(frame);
    m->pkt_len = static_cast<uint32_t>(frame);
    m->nb_segs = 1;
    m->next = nullptr;
    bytes_ += payload;
    bump(st_.replies);
    bump(st_.tx_packets);
    bump(st_.tx_bytes, frame);
    tx_.add(m);
  }
  // The request mbuf, when no reply took it over.
  rte_mbuf* leftover() const { return req_; }

 private:
  DpdkDriver::Impl& d_;
  LcoreStats& st_;
  TxBatch& tx_;
  rte_mempool* pool_;
  rte_mbuf* req_;
  Peer peer_;
  uint16_t& ip_id_;
  size_t bytes_ = 0;
};

// A received burst: its frames and what classify made of each.
struct Burst {
  rte_mbuf* bufs[kBurst];
  Classified cls[kBurst];
  std::string_view payloads[kBurst];  // of its memcache datagrams, for the dataplane's prefetch
  uint16_t n = 0;
  uint16_t udp = 0;  // payloads in use
  uint64_t tsc = 0;  // when it was received: the rate limiter's clock, read once per burst
};

// memcached's UDP request frame: at least the 8-byte header, one datagram, reserved zero.
bool frame_header_ok(const uint8_t* p, size_t len) {
  return len >= 8 && p[4] == 0 && p[5] == 1 && p[6] == 0 && p[7] == 0;
}

}  // namespace

int DpdkDriver::Impl::lcore_main() {
  const unsigned lcore = rte_lcore_id();
  const unsigned w = static_cast<unsigned>(rte_lcore_index(static_cast<int>(lcore)));
  const uint16_t q = static_cast<uint16_t>(w);
  const uint16_t port = opts.port;
  LcoreStats& st = stats[w];
  rte_mempool* pool = pool_for_lcore(lcore);
  TxBatch tx(port, q, &st.tx_dropped);
  TxBatch to_kernel(exc_port >= 0 ? static_cast<uint16_t>(exc_port) : 0, q, &st.tx_dropped);
  SrcLimiter limiter(opts.src_rate, rte_get_tsc_hz());
  uint16_t ip_id = static_cast<uint16_t>(w << 12);
  handler->worker_start(w);

  if (w == 0) {  // announce our address
    if (rte_mbuf* m = rte_pktmbuf_alloc(pool)) {
      size_t n = gratuitous_arp(rte_pktmbuf_mtod(m, uint8_t*), me);
      m->data_len = static_cast<uint16_t>(n);
      m->pkt_len = static_cast<uint32_t>(n);
      tx.add(m);
      tx.flush();
    }
  }

  const uint64_t drain = rte_get_tsc_hz() / 10000;  // 100 us
  uint64_t last_drain = rte_rdtsc(), last_loop = last_drain;
  auto drop = [&](rte_mbuf* m, Drop why) {
    bump(st.drops[static_cast<size_t>(why)]);
    rte_pktmbuf_free(m);
  };

  // Receives a burst, classifies every frame (header lines prefetched a few frames ahead) and
  // hands the dataplane its requests so that it starts fetching their index buckets.
  auto take = [&](Burst& b) {
    b.n = rte_eth_rx_burst(port, q, b.bufs, kBurst);
    bump(b.n ? st.busy_polls : st.idle_polls);
    if (b.n == 0) return;
    b.tsc = rte_rdtsc();
    for (uint16_t i = 0; i < b.n && i < 4; ++i) rte_prefetch0(rte_pktmbuf_mtod(b.bufs[i], void*));
    uint16_t udp = 0;
    for (uint16_t i = 0; i < b.n; ++i) {
      if (i + 4 < b.n) rte_prefetch0(rte_pktmbuf_mtod(b.bufs[i + 4], void*));
      rte_mbuf* m = b.bufs[i];
      Classified& c = b.cls[i];
      bump(st.rx_packets);
      bump(st.rx_bytes, m->pkt_len);
      if (m->nb_segs != 1) {  // jumbo chains are never memcache requests here
        c = Classified{};
        c.why = Drop::ip_header;
        continue;
      }
      RxOffload hw{};
      if (rx_csum) {
        hw.ip_checksum_good = (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
        hw.l4_checksum_good = (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD;
      }
      classify(rte_pktmbuf_mtod(m, uint8_t*), m->data_len, me, hw, c);
      if (c.verdict == Verdict::udp)
        b.payloads[udp++] = {rte_pktmbuf_mtod_offset(m, const char*, c.payload_off),
                             c.payload_len};
    }
    b.udp = udp;
    if (udp) handler->prefetch(w, {b.payloads, udp}, 0);
  };
  // The dataplane's second stage for a taken burst: its items, now that the buckets are in.
  auto fetch_items = [&](Burst& b) {
    if (b.udp) handler->prefetch(w, {b.payloads, b.udp}, 1);
    b.udp = 0;
  };

  // Answers a burst's frames in order; halfway through, `next` fetches its items.
  auto answer = [&](Burst& b, Burst& next) {
    for (uint16_t i = 0; i < b.n; ++i) {
      if (i == b.n / 2) fetch_items(next);
      rte_mbuf* m = b.bufs[i];
      uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
      const Classified& c = b.cls[i];
      switch (c.verdict) {
        case Verdict::drop:
          drop(m, c.why);
          break;
        case Verdict::arp_reply: {
          size_t len = arp_reply_in_place(f, m->data_len, me);
          m->data_len = static_cast<uint16_t>(len);
          m->pkt_len = static_cast<uint32_t>(len);
          bump(st.arp_replies);
          bump(st.tx_packets);
          tx.add(m);
          break;
        }
        case Verdict::icmp_echo: {
          size_t len = icmp_echo_reply_in_place(f, m->data_len);
          m->data_len = static_cast<uint16_t>(len);
          m->pkt_len = static_cast<uint32_t>(len);
          bump(st.icmp_replies);
          bump(st.tx_packets);
          tx.add(m);
          break;
        }
        case Verdict::arp_learn:
        case Verdict::exception:
          if (exc_port < 0) {
            // ARP replies and announcements need no answer; only count real misses.
            if (c.verdict == Verdict::arp_learn) rte_pktmbuf_free(m);
            else drop(m, Drop::no_exception_path);
          } else {
            bump(st.to_kernel);
            to_kernel.add(m);
          }
          break;
        case Verdict::udp: {
          const uint8_t* p = f + c.payload_off;
          if (!frame_header_ok(p, c.payload_len)) {
            drop(m, Drop::frame_header);
            break;
          }
          if (!limiter.allow(c.src_ip, b.tsc)) {
            drop(m, Drop::rate_limited);
            break;
          }
          bump(st.requests);
          Peer peer{c.src_mac, c.src_ip, c.src_port, c.dst_port};
          ReplySink sink(*this, st, tx, pool, m, peer, ip_id);
          handler->datagram(w, {reinterpret_cast<const char*>(p), c.payload_len}, sink);
          if (rte_mbuf* left = sink.leftover()) rte_pktmbuf_free(left);
          break;
        }
      }
    }
    b.n = 0;
    fetch_items(next);  // when b was empty
  };

  // Two bursts in flight: one is answered while the next one's lookups are being fetched (its
  // buckets before, its items halfway through), so that the answering hides the fetches. A
  // burst waits for the next poll only when that poll brings frames; on a quiet queue it is
  // answered at once.
  Burst bursts[2];
  Burst* fetching = &bursts[0];
  Burst* waiting = &bursts[1];
  rte_mbuf* from_kernel[kBurst];
  while (!quit.load(std::memory_order_relaxed)) {
    take(*fetching);
    const bool busy = fetching->n || waiting->n;
    answer(*waiting, *fetching);
    std::swap(fetching, waiting);
    // The kernel's side of the exception path is polled by lcore 0 only (one RX queue).
    if (exc_port >= 0 && w == 0) {
      uint16_t k = rte_eth_rx_burst(static_cast<uint16_t>(exc_port), 0, from_kernel, kBurst);
      for (uint16_t i = 0; i < k; ++i) {
        bump(st.from_kernel);
        bump(st.tx_packets);
        tx.add(from_kernel[i]);
      }
    }
    uint64_t now = rte_rdtsc();
    bump(busy ? st.busy_tsc : st.idle_tsc, now - last_loop);
    last_loop = now;
    if (busy || now - last_drain > drain) {
      if (!tx.empty()) tx.flush();
      if (!to_kernel.empty()) to_kernel.flush();
      last_drain = now;
    }
  }
  answer(*waiting, *fetching);  // taken already: answered, not leaked
  tx.flush();
  to_kernel.flush();
  return 0;
}

}  // namespace cachet::drivers::dpdk
