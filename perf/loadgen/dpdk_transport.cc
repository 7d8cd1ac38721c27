// cachet-load over DPDK: EAL, the port, ARP, the memcache transport and the ceiling (echo) loop.
// Headers are built and frames classified by drivers/dpdk/packet.hh, the same code cachetd's
// dataplane uses, so both ends agree on what a valid frame is.
#include "perf/loadgen/dpdk_transport.hh"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <sys/resource.h>

#include <fmt/core.h>

#include <arpa/inet.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "common/clock.hh"
#include "drivers/dpdk/packet.hh"
#include "drivers/dpdk/port.hh"
#include "perf/loadgen/report.hh"

namespace cachet::perf {
namespace {

namespace pk = cachet::drivers::dpdk;

constexpr uint16_t kBurst = 32;
constexpr uint16_t kRingDesc = 1024;
constexpr uint16_t kSrcPortBase = 20000;
constexpr uint16_t kPortsPerWorker = 1100;  // connections (<= kMaxDpdkWindow) + the stats probe
// Frames waiting for a full TX ring: more than the window means the peer stopped reading.
constexpr size_t kMaxTxBacklog = 2 * kMaxDpdkWindow;
// Marks ceiling frames (followed by slot, generation, send time).
constexpr char kMagic[8] = {'C', 'A', 'C', 'H', 'E', 'T', 'C', 'L'};
// Destination MAC of ceiling frames (the forwarder answers no ARP): locally administered.
constexpr pk::Mac kForwarderMac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

std::string mac_str(const pk::Mac& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4],
                     m[5]);
}

uint64_t thread_cpu_ns() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  auto ns = [](const timeval& tv) { return tv.tv_sec * 1'000'000'000ull + tv.tv_usec * 1000ull; };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

class Ctx;

// One worker's queue pair and connections (UDP source ports).
class DpdkTransport final : public Transport {
 public:
  DpdkTransport(Ctx& ctx, unsigned worker);
  ~DpdkTransport() override { close_all(); }
  bool open(const std::string& host, uint16_t port, unsigned n, Framing framing,
            std::string* error) override;
  void send(uint32_t conn, std::string_view bytes) override;
  int poll(uint64_t timeout_us, TransportHandler& h) override;
  void close_all() override;
  LinkCounters link_counters() const override { return lc_; }

 private:
  void flush();
  void bad(std::string what) {
    ++lc_.bad_frames;
    if (lc_.first_bad.empty()) lc_.first_bad = std::move(what);
  }
  void receive(rte_mbuf* m, TransportHandler& h);

  Ctx& ctx_;
  uint16_t queue_;
  pk::Identity me_;  // udp_port .. udp_port + udp_ports - 1: this worker's source ports
  uint16_t dst_port_ = 0;
  bool open_ = false;
  uint16_t ip_id_ = 0;
  std::vector<rte_mbuf*> tx_;  // queued, not yet accepted by the TX ring
  LinkCounters lc_;
};

class Ctx final : public DpdkContext {
 public:
  explicit Ctx(const Options& o) : opt(o) {}
  ~Ctx() override {
    if (port_started) pk::port_close(port);
    if (eal_ready) rte_eal_cleanup();
  }

  bool open(std::string* error);
  bool resolve(std::string* error);

  unsigned lcores() const override { return static_cast<unsigned>(lcore_ids.size()); }
  void launch(const std::function<void(unsigned)>& fn) override {
    struct Arg {
      const std::function<void(unsigned)>* fn;
      unsigned index;
    };
    std::vector<Arg> args(lcore_ids.size());
    for (unsigned i = 1; i < lcore_ids.size(); ++i) {
      args[i] = Arg{&fn, i};
      rte_eal_remote_launch(
          [](void* p) {
            auto* a = static_cast<Arg*>(p);
            (*a->fn)(a->index);
            return 0;
          },
          &args[i], lcore_ids[i]);
    }
    fn(0);
    rte_eal_mp_wait_lcore();
  }
  std::unique_ptr<Transport> transport(unsigned worker) override {
    return std::make_unique<DpdkTransport>(*this, worker);
  }
  std::string json() const override {
    return fmt::format(
        "{{\"port\": {}, \"driver\": \"{}\", \"lcores\": {}, \"mac\": \"{}\", \"ip\": \"{}\", "
        "\"peer_ip\": \"{}\", \"peer_mac\": \"{}\", \"arp_resolved\": {}, \"arp_requests\": {}, "
        "\"arp_ms\": {:.1f}, \"link_wait_ms\": {:.1f}, \"udp_checksum\": {}}}",
        port, driver, lcores(), mac_str(me.mac), pk::ipv4_to_string(me.ip),
        pk::ipv4_to_string(peer_ip), mac_str(peer_mac), arp_resolved, arp_requests, arp_ms,
        link_ms, !opt.dpdk_no_udp_checksum);
  }
  void linger(double seconds) override {
    fmt::print("cachet-load: lingering with the port open until the peer disconnects (at most "
               "{} s)\n", seconds);
    std::fflush(stdout);
    const uint64_t until = common::mono_ns() + static_cast<uint64_t>(seconds * 1e9);
    while (common::mono_ns() < until) {
      rte_eth_link link{};
      rte_eth_link_get_nowait(port, &link);
      if (link.link_status != RTE_ETH_LINK_UP) {
        // The PMD marks the link down first and then tears the connection down in its
        // interrupt thread; closing the port before that finished races with it (SIGSEGV).
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  std::string describe() const override {
    return fmt::format("dpdk port {} ({}) {} {} -> {} {}{}, {} lcore(s), link up in {:.0f} ms",
                       port, driver, mac_str(me.mac), pk::ipv4_to_string(me.ip),
                       pk::ipv4_to_string(peer_ip), mac_str(peer_mac),
                       arp_resolved ? fmt::format(" (ARP answered in {:.1f} ms)", arp_ms)
                                    : std::string(" (no ARP: forwarder)"),
                       lcores(), link_ms);
  }

  const Options& opt;
  uint16_t port = 0;
  std::string driver;
  rte_mempool* pool = nullptr;
  std::vector<unsigned> lcore_ids;  // worker i runs on lcore_ids[i]; [0] is the main lcore
  pk::Identity me;
  unsigned prefix = 24;
  uint32_t peer_ip = 0;
  pk::Mac peer_mac = kForwarderMac;
  bool arp_resolved = false;
  unsigned arp_requests = 0;
  double arp_ms = 0, link_ms = 0;
  bool eal_ready = false, port_started = false;
};

bool Ctx::open(std::string* error) {
  if (!pk::parse_ipv4_cidr(opt.dpdk_ip, &me.ip, &prefix, error)) return false;
  unsigned peer_prefix = 0;
  std::string perr;
  if (!pk::parse_ipv4_cidr(opt.dpdk_peer, &peer_ip, &peer_prefix, &perr)) {
    *error = fmt::format("--dpdk-peer: '{}' is not an IPv4 address", opt.dpdk_peer);
    return false;
  }
  if (!pk::eal_init("cachet-load", opt.dpdk_args, error)) return false;
  eal_ready = true;
  lcore_ids.push_back(rte_get_main_lcore());
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) lcore_ids.push_back(lc);
  port = opt.dpdk_port;
  if (!rte_eth_dev_is_valid_port(port)) {
    *error = fmt::format("--dpdk-port {}: EAL found {} port(s); give a --vdev in --dpdk-args",
                         port, rte_eth_dev_count_avail());
    return false;
  }
  const unsigned nq = lcores();
  // RX ring + TX ring + backlog + in-flight bursts per lcore, plus the pool's caches.
  const unsigned per_lcore = 2 * kRingDesc + kMaxTxBacklog + 4 * kBurst;
  pool = pk::pool_create(fmt::format("cload_pool_{}", port), per_lcore * nq + 256 * nq + 1024,
                         static_cast<int>(rte_socket_id()), error);
  if (!pool) return false;
  pk::PortInfo info;
  if (!pk::port_start({port, nq, nq, pool, false, false, kRingDesc, kRingDesc}, &info, error))
    return false;
  port_started = true;
  driver = info.driver;
  me.mac = info.mac;

  // The link: a memif client is up once the server accepted it. A server that was still
  // setting up its port when we connected may have dropped us: restart the port (reconnect)
  // every second until the link comes up.
  const uint64_t t0 = common::mono_ns();
  const uint64_t deadline = t0 + static_cast<uint64_t>(opt.dpdk_arp_timeout * 1e9);
  uint64_t next_restart = t0 + 1'000'000'000;
  for (;;) {
    rte_eth_link link{};
    rte_eth_link_get_nowait(port, &link);
    if (link.link_status == RTE_ETH_LINK_UP) break;
    uint64_t now = common::mono_ns();
    if (now >= deadline) {
      *error = fmt::format("port {} ({}): link not up after {} s (is the server running?)", port,
                           driver, opt.dpdk_arp_timeout);
      return false;
    }
    if (now >= next_restart) {
      rte_eth_dev_stop(port);
      if (int rc = rte_eth_dev_start(port); rc != 0) {
        port_started = false;
        *error = fmt::format("port {}: restart failed ({})", port, rte_strerror(-rc));
        return false;
      }
      next_restart = now + 1'000'000'000;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  link_ms = (common::mono_ns() - t0) / 1e6;
  return opt.mode == Mode::ceiling || resolve(error);
}

// Asks for the peer's MAC every 100 ms on queue 0 until an ARP reply from the peer, addressed
// to us, arrives. Anything else that comes meanwhile (the server's gratuitous ARP) is dropped.
bool Ctx::resolve(std::string* error) {
  const uint64_t t0 = common::mono_ns();
  const uint64_t deadline = t0 + static_cast<uint64_t>(opt.dpdk_arp_timeout * 1e9);
  uint64_t next_ask = t0;
  rte_mbuf* bufs[kBurst];
  while (common::mono_ns() < deadline) {
    if (common::mono_ns() >= next_ask) {
      if (rte_mbuf* m = rte_pktmbuf_alloc(pool)) {
        uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
        size_t n = pk::gratuitous_arp(f, me);  // a request for our own address ...
        std::memcpy(f + pk::kEthLen + 24, &peer_ip, 4);  // ... now for the peer's
        m->data_len = static_cast<uint16_t>(n);
        m->pkt_len = static_cast<uint32_t>(n);
        if (rte_eth_tx_burst(port, 0, &m, 1) == 1)
          ++arp_requests;
        else
          rte_pktmbuf_free(m);
      }
      next_ask = common::mono_ns() + 100'000'000;
    }
    uint16_t n = rte_eth_rx_burst(port, 0, bufs, kBurst);
    for (uint16_t i = 0; i < n; ++i) {
      const uint8_t* f = rte_pktmbuf_mtod(bufs[i], const uint8_t*);
      const size_t len = bufs[i]->data_len;
      pk::Classified c = pk::classify(f, len, me);
      const uint8_t* a = f + pk::kEthLen;
      if (c.verdict == pk::Verdict::arp_learn && c.src_ip == peer_ip && a[6] == 0 && a[7] == 2 &&
          std::memcmp(a + 24, &me.ip, 4) == 0) {
        std::memcpy(peer_mac.data(), a + 8, 6);
        arp_resolved = true;
      }
    }
    rte_pktmbuf_free_bulk(bufs, n);
    if (arp_resolved) {
      arp_ms = (common::mono_ns() - t0) / 1e6;
      return true;
    }
  }
  *error = fmt::format("no ARP reply from {} within {} s ({} requests sent on port {})",
                       pk::ipv4_to_string(peer_ip), opt.dpdk_arp_timeout, arp_requests, port);
  return false;
}

DpdkTransport::DpdkTransport(Ctx& ctx, unsigned worker)
    : ctx_(ctx), queue_(static_cast<uint16_t>(worker)), ip_id_(static_cast<uint16_t>(worker << 12)) {
  me_.mac = ctx.me.mac;
  me_.ip = ctx.me.ip;
  me_.udp_port = static_cast<uint16_t>(kSrcPortBase + kPortsPerWorker * worker);
  tx_.reserve(kMaxTxBacklog + kBurst);
}

bool DpdkTransport::open(const std::string&, uint16_t port, unsigned n, Framing framing,
                         std::string* error) {
  if (framing != Framing::datagram || n == 0 || n > kPortsPerWorker ||
      me_.udp_port + n > 65535u) {
    *error = fmt::format("DPDK transport: {} datagram connections do not fit this worker's "
                         "source ports", n);
    return false;
  }
  me_.udp_ports = static_cast<uint16_t>(n);
  dst_port_ = port;
  open_ = true;
  return true;
}

void DpdkTransport::send(uint32_t conn, std::string_view bytes) {
  if (!open_) return;
  if (bytes.size() > kMaxDpdkUdpPayload)
    return bad(fmt::format("request of {} bytes does not fit one frame", bytes.size()));
  if (tx_.size() >= kMaxTxBacklog)
    return bad(fmt::format("TX ring of port {} queue {} full for {} frames: the peer stopped "
                           "reading", ctx_.port, queue_, tx_.size()));
  rte_mbuf* m = rte_pktmbuf_alloc(ctx_.pool);
  if (!m) return bad("mbuf pool empty");
  uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
  std::memcpy(f + pk::kUdpHeadroom, bytes.data(), bytes.size());
  pk::Peer to{ctx_.peer_mac, ctx_.peer_ip, dst_port_, static_cast<uint16_t>(me_.udp_port + conn)};
  size_t len = pk::write_udp_headers(f, me_, to, bytes.size(), ip_id_++,
                                     !ctx_.opt.dpdk_no_udp_checksum);
  m->data_len = static_cast<uint16_t>(len);
  m->pkt_len = static_cast<uint32_t>(len);
  tx_.push_back(m);
  if (tx_.size() >= kBurst) flush();
}

// Hands queued frames to the TX ring, 32 at a time; what the ring does not take waits for the
// next poll (never dropped, never spun on).
void DpdkTransport::flush() {
  size_t done = 0;
  while (done < tx_.size()) {
    uint16_t want = static_cast<uint16_t>(std::min<size_t>(kBurst, tx_.size() - done));
    uint16_t sent = rte_eth_tx_burst(ctx_.port, queue_, tx_.data() + done, want);
    done += sent;
    lc_.tx_packets += sent;
    if (sent < want) break;
  }
  tx_.erase(tx_.begin(), tx_.begin() + static_cast<std::ptrdiff_t>(done));
}

int DpdkTransport::poll(uint64_t, TransportHandler& h) {
  if (!open_) return 0;
  if (!tx_.empty()) flush();
  rte_mbuf* bufs[kBurst];
  uint16_t n = rte_eth_rx_burst(ctx_.port, queue_, bufs, kBurst);
  if (n == 0) return 0;
  h.on_rx_time(common::mono_ns());
  for (uint16_t i = 0; i < n; ++i) receive(bufs[i], h);
  return n;
}

// A frame from the server: a UDP reply from the peer's memcache port to one of our ports is
// handed to the worker; an ARP request for us is answered; everything else is a bad frame.
void DpdkTransport::receive(rte_mbuf* m, TransportHandler& h) {
  ++lc_.rx_packets;
  if (m->nb_segs != 1) {
    bad(fmt::format("{}-byte frame in {} segments (replies fit one)", m->pkt_len, m->nb_segs));
    rte_pktmbuf_free(m);
    return;
  }
  uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
  pk::Classified c = pk::classify(f, m->data_len, me_);
  switch (c.verdict) {
    case pk::Verdict::udp:
      if (c.src_ip != ctx_.peer_ip || c.src_port != dst_port_) {
        bad(fmt::format("UDP from {}:{}, expected the server {}:{}",
                        pk::ipv4_to_string(c.src_ip), c.src_port,
                        pk::ipv4_to_string(ctx_.peer_ip), dst_port_));
        break;
      }
      h.on_recv(static_cast<uint32_t>(c.dst_port - me_.udp_port),
                std::string_view(reinterpret_cast<const char*>(f) + c.payload_off,
                                 c.payload_len));
      break;
    case pk::Verdict::arp_reply: {
      size_t len = pk::arp_reply_in_place(f, m->data_len, me_);
      m->data_len = static_cast<uint16_t>(len);
      m->pkt_len = static_cast<uint32_t>(len);
      tx_.push_back(m);
      return;
    }
    case pk::Verdict::arp_learn:  // the server's announcement, or a stray reply: no answer due
      break;
    case pk::Verdict::drop:
      bad(fmt::format("frame from the server dropped: {} ({} bytes)", pk::drop_name(c.why),
                      m->data_len));
      break;
    case pk::Verdict::icmp_echo:
    case pk::Verdict::exception:
      bad(fmt::format("unexpected {}-byte frame (not a UDP reply to our ports: dst port {})",
                      m->data_len, c.dst_port));
      break;
  }
  rte_pktmbuf_free(m);
}

void DpdkTransport::close_all() {
  if (!tx_.empty()) {
    flush();
    rte_pktmbuf_free_bulk(tx_.data(), static_cast<unsigned>(tx_.size()));
    tx_.clear();
  }
  open_ = false;
}

// --------------------------------------------------------------------------------------------
// Ceiling: raw frames echoed by a forwarder. Each carries the magic, its slot in this lcore's
// window, the slot's generation and the send time; a frame counts when it comes back to our
// MAC unaltered.

struct CeilingPayload {
  char magic[8];
  uint32_t slot;
  uint32_t gen;
  uint64_t tsc;
};

struct CeilingShared {
  uint64_t warm_tsc, end_tsc;  // window [warm_tsc, end_tsc)
  uint64_t quota;              // frames back in the window, all lcores (0: none)
  std::atomic<uint64_t> received{0};
  std::atomic<bool> stop{false};
};

class CeilingLoop {
 public:
  CeilingLoop(Ctx& ctx, unsigned w, unsigned window, CeilingShared& sh)
      : ctx_(ctx), q_(static_cast<uint16_t>(w)), w_(w), sh_(sh), slots_(window) {
    free_.reserve(window);
    for (uint32_t i = window; i-- > 0;) free_.push_back(i);
    const Options& o = ctx.opt;
    frame_.resize(o.frame_size);
    pk::Identity me{ctx.me.mac, ctx.me.ip, static_cast<uint16_t>(kSrcPortBase + w), 1};
    pk::Peer to{ctx.peer_mac, ctx.peer_ip, o.port, me.udp_port};
    size_t payload = o.frame_size - pk::kUdpHeadroom;
    std::memset(frame_.data() + pk::kUdpHeadroom, 0x5a, payload);
    std::memcpy(frame_.data() + pk::kUdpHeadroom, kMagic, sizeof kMagic);
    pk::write_udp_headers(frame_.data(), me, to, payload, 0, false);  // checksum 0: not kept
  }

  void run(CeilingSummary& out);
  uint64_t sent() const { return sent_; }

 private:
  void send_some(uint64_t now);
  void receive(rte_mbuf* m, uint64_t now, CeilingSummary& out);
  void expire(uint64_t now, CeilingSummary& out);
  bool in_window(uint64_t tsc) const { return tsc >= sh_.warm_tsc && tsc < sh_.end_tsc; }

  struct Slot {
    uint32_t gen = 0;
    bool busy = false;
    uint64_t sent = 0;
  };
  Ctx& ctx_;
  uint16_t q_;
  unsigned w_;
  CeilingShared& sh_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  std::vector<uint8_t> frame_;
  std::vector<rte_mbuf*> tx_;
  uint64_t hz_ = rte_get_tsc_hz();
  uint64_t sent_ = 0;  // frames sent inside the window
  uint64_t idle_ticks_ = 0;
};

void CeilingLoop::send_some(uint64_t now) {
  rte_mbuf* bufs[kBurst];
  unsigned k = static_cast<unsigned>(std::min<size_t>(free_.size(), kBurst));
  if (k && tx_.size() < kBurst && rte_pktmbuf_alloc_bulk(ctx_.pool, bufs, k) == 0) {
    for (unsigned i = 0; i < k; ++i) {
      uint32_t s = free_.back();
      free_.pop_back();
      Slot& sl = slots_[s];
      sl.busy = true;
      sl.sent = now;
      ++sl.gen;
      if (in_window(now)) ++sent_;
      uint8_t* f = rte_pktmbuf_mtod(bufs[i], uint8_t*);
      std::memcpy(f, frame_.data(), frame_.size());
      CeilingPayload p;
      std::memcpy(p.magic, kMagic, sizeof kMagic);
      p.slot = s;
      p.gen = sl.gen;
      p.tsc = now;
      std::memcpy(f + pk::kUdpHeadroom, &p, sizeof p);
      bufs[i]->data_len = static_cast<uint16_t>(frame_.size());
      bufs[i]->pkt_len = static_cast<uint32_t>(frame_.size());
      tx_.push_back(bufs[i]);
    }
  }
  if (tx_.empty()) return;
  uint16_t sent = rte_eth_tx_burst(ctx_.port, q_, tx_.data(),
                                   static_cast<uint16_t>(std::min<size_t>(tx_.size(), 4 * kBurst)));
  tx_.erase(tx_.begin(), tx_.begin() + sent);
}

void CeilingLoop::receive(rte_mbuf* m, uint64_t now, CeilingSummary& out) {
  const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
  CeilingPayload p;
  if (m->nb_segs != 1 || m->data_len != frame_.size() ||
      std::memcmp(f, ctx_.me.mac.data(), 6) != 0) {
    ++out.bad;
    if (out.first_error.empty())
      out.first_error = fmt::format("lcore {}: a {}-byte frame came back (sent {}), or not to "
                                    "our MAC", w_, m->data_len, frame_.size());
    return;
  }
  std::memcpy(&p, f + pk::kUdpHeadroom, sizeof p);
  if (std::memcmp(p.magic, kMagic, sizeof kMagic) != 0 || p.slot >= slots_.size()) {
    ++out.bad;
    if (out.first_error.empty()) out.first_error = "a frame came back without our marker";
    return;
  }
  Slot& sl = slots_[p.slot];
  if (!sl.busy || sl.gen != p.gen) return;  // already counted lost
  sl.busy = false;
  free_.push_back(p.slot);
  if (in_window(sl.sent) && now < sh_.end_tsc) {
    ++out.received;
    out.lat.record((now - sl.sent) * 1'000'000'000ull / hz_);
    if (sh_.quota && sh_.received.fetch_add(1, std::memory_order_relaxed) + 1 >= sh_.quota)
      sh_.stop.store(true, std::memory_order_relaxed);
  }
}

void CeilingLoop::expire(uint64_t now, CeilingSummary& out) {
  const uint64_t limit = static_cast<uint64_t>(ctx_.opt.udp_timeout * static_cast<double>(hz_));
  for (uint32_t s = 0; s < slots_.size(); ++s) {
    Slot& sl = slots_[s];
    if (sl.busy && now - sl.sent > limit) {
      sl.busy = false;
      free_.push_back(s);
      if (in_window(sl.sent)) ++out.lost;
    }
  }
}

void CeilingLoop::run(CeilingSummary& out) {
  rte_mbuf* bufs[kBurst];
  uint64_t next_expire = rte_rdtsc() + hz_ / 100;
  bool window = false, was_empty = false;
  uint64_t cpu0 = 0, t_start = 0, prev = rte_rdtsc();
  for (;;) {
    uint64_t now = rte_rdtsc();
    if (window && was_empty) idle_ticks_ += now - prev;
    prev = now;
    if (now >= sh_.end_tsc || sh_.stop.load(std::memory_order_relaxed)) break;
    if (!window && now >= sh_.warm_tsc) {
      window = true;
      cpu0 = thread_cpu_ns();
      t_start = now;
      if (w_ == 0 && ctx_.opt.marks) {
        fmt::print("cachet-load: window start\n");
        std::fflush(stdout);
      }
    }
    send_some(now);
    uint16_t n = rte_eth_rx_burst(ctx_.port, q_, bufs, kBurst);
    now = rte_rdtsc();
    for (uint16_t i = 0; i < n; ++i) receive(bufs[i], now, out);
    if (n) rte_pktmbuf_free_bulk(bufs, n);
    was_empty = n == 0;
    if (window) {
      ++out.polls;
      if (n == 0) ++out.empty_polls;
    }
    if (now >= next_expire) {
      expire(now, out);
      next_expire = now + hz_ / 100;
    }
  }
  uint64_t t_end = std::min(rte_rdtsc(), sh_.end_tsc);
  if (window) {
    out.cpu_ns += thread_cpu_ns() - cpu0;
    out.idle_ns += idle_ticks_ * 1'000'000'000ull / hz_;
    out.elapsed_s = static_cast<double>(t_end - t_start) / static_cast<double>(hz_);
    if (w_ == 0 && ctx_.opt.marks) {
      fmt::print("cachet-load: window end\n");
      std::fflush(stdout);
    }
  }
  if (!tx_.empty()) rte_pktmbuf_free_bulk(tx_.data(), static_cast<unsigned>(tx_.size()));
  tx_.clear();
  // Drain what is still coming back so that the forwarder's ring empties.
  for (uint64_t until = rte_rdtsc() + hz_ / 20; rte_rdtsc() < until;) {
    uint16_t n = rte_eth_rx_burst(ctx_.port, q_, bufs, kBurst);
    if (n) rte_pktmbuf_free_bulk(bufs, n);
  }
}

}  // namespace

std::unique_ptr<DpdkContext> dpdk_open(const Options& opt, std::string* error) {
  auto ctx = std::make_unique<Ctx>(opt);
  if (!ctx->open(error)) return nullptr;
  return ctx;
}

int run_ceiling(const Options& opt, DpdkContext& base) {
  Ctx& ctx = static_cast<Ctx&>(base);
  const unsigned n = ctx.lcores();
  const uint64_t hz = rte_get_tsc_hz();
  CeilingShared sh;
  uint64_t t0 = rte_rdtsc() + hz / 100;
  sh.warm_tsc = t0 + static_cast<uint64_t>(opt.warmup * static_cast<double>(hz));
  sh.end_tsc = sh.warm_tsc + static_cast<uint64_t>(opt.duration * static_cast<double>(hz));
  sh.quota = opt.max_requests;
  std::vector<CeilingSummary> parts(n);
  ctx.launch([&](unsigned w) {
    unsigned window = opt.window / n + (w < opt.window % n ? 1 : 0);
    CeilingLoop loop(ctx, w, std::max(window, 1u), sh);
    loop.run(parts[w]);
    parts[w].sent = loop.sent();
  });
  CeilingSummary total;
  for (const CeilingSummary& p : parts) {
    total.sent += p.sent;
    total.received += p.received;
    total.lost += p.lost;
    total.bad += p.bad;
    total.polls += p.polls;
    total.empty_polls += p.empty_polls;
    total.cpu_ns += p.cpu_ns;
    total.idle_ns += p.idle_ns;
    total.elapsed_s = std::max(total.elapsed_s, p.elapsed_s);
    total.lat.merge(p.lat);
    if (total.first_error.empty()) total.first_error = p.first_error;
  }
  if (total.received == 0 && total.first_error.empty())
    total.first_error = "no frame came back: is a forwarder (testpmd macswap) on the link?";
  total.link_json = ctx.json();
  total.link_desc = ctx.describe();
  if (!opt.quiet) print_ceiling(opt, total);
  if (!opt.json.empty()) {
    std::string err;
    if (!write_ceiling_json(opt, total, &err)) {
      fmt::print(stderr, "cachet-load: {}\n", err);
      return 1;
    }
  }
  if (!total.ok()) {
    fmt::print(stderr, "cachet-load: ceiling: {}\n", total.first_error);
    return 2;
  }
  return 0;
}

}  // namespace cachet::perf
