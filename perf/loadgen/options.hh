// cachet-load's options: one table of name, default and description, parsed from argv.
// Every option has a bound so that a run always ends by itself.
#pragma once

#include <cstdint>
#include <string>

namespace cachet::perf {

enum class ValueDist { fixed, wildcard };  // wildcard: Facebook ETC (Atikoglu et al. 2012)
enum class KeyDist { fixed, etc };
enum class IoKind { uring, epoll };
enum class Mode { memcache, ceiling };  // ceiling: raw UDP echo frames (DPDK only)

struct Options {
  std::string host = "127.0.0.1";
  uint16_t port = 11211;
  unsigned threads = 1;       // one event loop per thread
  unsigned conns = 4;         // total, spread across threads
  unsigned pipeline = 1;      // requests in flight per connection
  double duration = 5.0;      // measured seconds (after warmup)
  uint64_t max_requests = 0;  // measured requests, 0 = only duration bounds the run
  uint32_t keys = 100000;     // key space: keys 0..keys-1
  unsigned key_size = 32;     // bytes, for --key-dist fixed
  KeyDist key_dist = KeyDist::fixed;
  uint32_t value_size = 32;  // bytes, for --value-dist fixed
  ValueDist value_dist = ValueDist::fixed;
  double get_ratio = 0.9;        // share of requests that are gets
  unsigned multiget = 1;         // keys per get request
  bool gets_cmd = false;         // send `gets` instead of `get`
  bool preload = false;          // set every key once before measuring
  double preload_timeout = 120;  // seconds the preload may take before the run fails
  double warmup = 0;             // seconds of unmeasured load before the measured window
  std::string json;              // write the result as JSON here
  bool udp = false;              // memcached UDP with the 8-byte frame header
  double udp_timeout = 1.0;      // seconds before an unanswered UDP request counts as lost
  IoKind io = IoKind::uring;
  bool busy_poll = false;  // never sleep in the kernel waiting for replies
  uint64_t seed = 1;
  bool quiet = false;  // no human summary
  bool marks = false;  // print a line when the measured window starts and ends
  bool server_stats = false;  // UDP: fetch `stats` at the window's edges, report the deltas
  // DPDK transport (perf/loadgen/dpdk_transport.*): memcache over UDP on an ethdev port.
  std::string dpdk_args;      // EAL arguments; non-empty selects the DPDK transport
  std::string dpdk_ip;        // our address, A.B.C.D/NN
  std::string dpdk_peer;      // the server's address, A.B.C.D
  uint16_t dpdk_port = 0;     // ethdev port id
  double dpdk_arp_timeout = 10;  // seconds for link up + ARP resolution
  double dpdk_linger = 0;        // seconds to keep the port open after the run (see linger())
  bool dpdk_no_udp_checksum = false;
  Mode mode = Mode::memcache;
  unsigned frame_size = 128;  // ceiling: Ethernet frame bytes (no FCS)
  unsigned window = 256;      // ceiling: frames in flight in total

  bool dpdk() const { return !dpdk_args.empty(); }
};

// Largest value the generator sends: memcached's 1 MB item limit minus room for the item
// header, key and suffix.
inline constexpr uint32_t kMaxValueSize = (1u << 20) - 1024;
// memcached takes a UDP request in one datagram of at most 64 KB.
inline constexpr uint32_t kMaxUdpValueSize = 60000;
// Over DPDK a request is one Ethernet frame (MTU 1500: 1472 bytes of UDP payload, no IP
// fragments): a set of the longest key and this value still fits.
inline constexpr uint32_t kMaxDpdkValueSize = 1150;
inline constexpr unsigned kMaxDpdkUdpPayload = 1472;
// Requests (datagrams) in flight over DPDK, all threads: stays under one memif ring (1024) so
// that a slow server can never overflow a ring and lose a request.
inline constexpr unsigned kMaxDpdkWindow = 1024;
inline constexpr unsigned kMaxKeySize = 250;  // memcached's KEY_MAX_LENGTH
inline constexpr unsigned kMaxMultiget = 100;

// Parses argv into *opt. Returns -1 to run, or the exit status to leave with: 0 after printing
// --help to stdout, 1 after a message naming the bad option on stderr.
int parse_options(int argc, char** argv, Options* opt);

const char* to_string(ValueDist d);
const char* to_string(KeyDist d);
const char* to_string(IoKind k);
const char* to_string(Mode m);

}  // namespace cachet::perf
