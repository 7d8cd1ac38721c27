// The bypass path's link and network layer on plain bytes: classify a received Ethernet frame
// (ARP, ICMP echo, UDP for us, exception, drop with a reason) and build replies in place.
// No DPDK header here, so it is unit tested and fuzzed alone.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace cachet::drivers::dpdk {

using Mac = std::array<uint8_t, 6>;

inline constexpr size_t kEthLen = 14;
inline constexpr size_t kIpLen = 20;  // without options
inline constexpr size_t kUdpLen = 8;
inline constexpr size_t kUdpHeadroom = kEthLen + kIpLen + kUdpLen;  // 42

// Why a frame was dropped before it reached the dataplane; the order is the order of `stats`
// lines. Datagrams to our memcache ports are judged by the UDP policy (drivers/udp_policy.hh).
#define CACHET_DROP_REASONS(X)                                          \
  X(runt, "frame shorter than its headers")                             \
  X(ethertype, "neither IPv4 nor ARP")                                  \
  X(arp_malformed, "ARP that is not Ethernet/IPv4")                     \
  X(ip_header, "bad IPv4 version, header length or total length")       \
  X(ip_checksum, "IPv4 header checksum mismatch")                       \
  X(ip_fragment, "IPv4 fragment (memcache requests are never fragmented)") \
  X(ip_not_ours, "IPv4 destination is not our address")                 \
  X(udp_length, "UDP length disagrees with the IPv4 length")            \
  X(udp_checksum, "UDP checksum mismatch")                              \
  X(icmp_malformed, "ICMP shorter than its header or bad checksum")     \
  X(no_exception_path, "not for the dataplane and no exception port")

enum class Drop : uint8_t {
  none = 0,
#define CACHET_X(name, desc) name,
  CACHET_DROP_REASONS(CACHET_X)
#undef CACHET_X
  count
};
const char* drop_name(Drop d);

enum class Verdict : uint8_t {
  drop,        // see Classified::why
  arp_reply,   // an ARP request for our address: answer it
  arp_learn,   // other ARP (a reply, a request for someone else): learn, pass to the kernel
  icmp_echo,   // echo request to us: answer it
  udp,         // UDP to one of our memcache ports
  exception,   // for the kernel (TCP, other ports, other protocols)
};

struct Classified {
  Verdict verdict = Verdict::drop;
  Drop why = Drop::none;
  uint32_t src_ip = 0;  // network order, as on the wire
  uint16_t src_port = 0;
  uint16_t dst_port = 0;  // host order
  Mac src_mac{};
  size_t payload_off = 0;  // UDP payload
  size_t payload_len = 0;
};

struct Identity {
  Mac mac{};
  uint32_t ip = 0;         // network order
  uint16_t udp_port = 0;   // first memcache port (host order)
  uint16_t udp_ports = 1;  // ports udp_port .. udp_port + udp_ports - 1 are ours
};

// Checks offloaded by the NIC for this frame (true = the hardware verified it good).
struct RxOffload {
  bool ip_checksum_good = false;
  bool l4_checksum_good = false;
};

// Classifies the frame into `out`. Reads only within [frame, frame + len). The poll loop
// classifies into its burst's slots: a returned struct would be copied back through the
// stack, and that copy stalls on store forwarding.
void classify(const uint8_t* frame, size_t len, const Identity& me, RxOffload hw,
              Classified& out);
inline Classified classify(const uint8_t* frame, size_t len, const Identity& me,
                           RxOffload hw = {}) {
  Classified c;
  classify(frame, len, me, hw, c);
  return c;
}

// Rewrites an ARP request for us into the reply, in place. Returns the reply length.
size_t arp_reply_in_place(uint8_t* frame, size_t len, const Identity& me);
// Rewrites an ICMP echo request into the echo reply, in place. Returns the reply length.
size_t icmp_echo_reply_in_place(uint8_t* frame, size_t len);
// Writes a gratuitous ARP (a request for our own address) into frame (>= 42 bytes); returns 42.
size_t gratuitous_arp(uint8_t* frame, const Identity& me);

// Where a UDP reply goes.
struct Peer {
  Mac mac{};
  uint32_t ip = 0;     // network order
  uint16_t port = 0;   // host order
  uint16_t our_port = 0;
};
// Writes Ethernet, IPv4 and UDP headers in front of `payload_len` bytes already at
// frame + kUdpHeadroom, with the UDP checksum when udp_checksum is set. Returns frame length.
size_t write_udp_headers(uint8_t* frame, const Identity& me, const Peer& to, size_t payload_len,
                         uint16_t ip_id, bool udp_checksum);

// RFC 1071 one's-complement sum folded to 16 bits (not inverted), network byte order data.
uint32_t csum_partial(const void* data, size_t len, uint32_t sum = 0);
uint16_t csum_fold(uint32_t sum);

// "10.0.0.2/24" → ip (network order) and prefix; false with *error on bad input.
bool parse_ipv4_cidr(const std::string& s, uint32_t* ip, unsigned* prefix, std::string* error);
std::string ipv4_to_string(uint32_t ip_net_order);

}  // namespace cachet::drivers::dpdk
