// Fuzz target: a whole UDP datagram through Server::datagram, as both drivers hand it over
// (the DPDK path's burst prefetch, both stages, first). Invariants: a datagram memcached
// would drop gets no reply; otherwise the reply datagrams carry the request id, sequence
// numbers 0..n-1 and the count n, hold at most 1392 bytes each (all but the last exactly),
// and put back together are well-formed replies of the datagram's protocol; the store's
// consistency check holds afterwards.
#include <string>

#include "dataplane/protocol/binary_parser.hh"
#include "dataplane/udp_frame.hh"
#include "tests/fuzz/harness.hh"
#include "tests/fuzz/replies.hh"

using namespace cachet;
using namespace cachet::dataplane;

namespace {

uint16_t be16(std::string_view s, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(s[at]) << 8 |
                               static_cast<uint8_t>(s[at + 1]));
}

struct Collect : drivers::DatagramSink {
  void emit(std::string_view head, std::string_view body) override {
    heads.emplace_back(head);
    reply.append(body);
    sizes.push_back(body.size());
  }
  std::vector<std::string> heads;
  std::vector<size_t> sizes;
  std::string reply;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  fuzz::Target t;
  const std::string_view burst[1] = {in};
  t.server->prefetch(0, burst, 0);
  t.server->prefetch(0, burst, 1);
  Collect got;
  const drivers::UdpDrop verdict = t.server->datagram(0, in, got);
  udp::FrameHeader fh;
  FUZZ_EXPECT(verdict == udp::parse_request(in, &fh), "datagram's verdict {} is not the frame "
               "check's", drivers::udp_drop_name(verdict));
  if (verdict != drivers::UdpDrop::none) {
    FUZZ_EXPECT(got.heads.empty(), "a datagram memcached drops got {} replies",
                 got.heads.size());
  } else {
    const size_t n = got.heads.size();
    for (size_t i = 0; i < n; ++i) {
      const std::string& h = got.heads[i];
      FUZZ_EXPECT(h.size() == udp::kHeaderSize && be16(h, 0) == be16(in, 0) &&
                       be16(h, 2) == i && be16(h, 4) == n && be16(h, 6) == 0,
                   "reply datagram {} of {}: bad frame header", i, n);
      FUZZ_EXPECT(got.sizes[i] <= udp::kMaxData && (i + 1 == n || got.sizes[i] == udp::kMaxData),
                   "reply datagram {} of {} carries {} bytes", i, n, got.sizes[i]);
    }
    const bool binary = size > udp::kHeaderSize &&
                        data[udp::kHeaderSize] == binary::kRequestMagic;
    const std::string why = binary ? fuzz::check_binary_replies(got.reply)
                                   : fuzz::check_text_replies(got.reply);
    FUZZ_EXPECT(why.empty(), "malformed reply: {}\nreply: {}", why, fuzz::printable(got.reply));
  }
  t.check_store();
  return 0;
}
