// Fuzz target: memcached's UDP frame header (dataplane/udp_frame.hh). The input is read as a
// request datagram, and as a reply to split into datagrams (data[0] == 0xff: a reply of a
// length taken from the next bytes, up to past the 65535-datagram cap). Invariants: a header
// is accepted exactly when memcached would answer it, with the fields as sent; a reply's
// datagrams carry the request id, sequence numbers 0..n-1 and the count n, hold at most 1392
// reply bytes each, and put back together give the reply (cut at the cap).
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/udp_frame.hh"
#include "tests/fuzz/harness.hh"

using namespace cachet;
using namespace cachet::dataplane;

namespace {

uint16_t be16(const char* p) {
  return static_cast<uint16_t>(static_cast<uint8_t>(p[0]) << 8 | static_cast<uint8_t>(p[1]));
}

void check_request(std::string_view in) {
  udp::FrameHeader fh;
  const drivers::UdpDrop why = udp::parse_request(in, &fh);
  const bool answerable = in.size() > udp::kHeaderSize && be16(in.data() + 4) == 1;
  FUZZ_EXPECT((why == drivers::UdpDrop::none) == answerable, "parse_request of {} bytes: {}",
               in.size(), drivers::udp_drop_name(why));
  if (why != drivers::UdpDrop::none) {
    FUZZ_EXPECT(why == (in.size() <= udp::kHeaderSize ? drivers::UdpDrop::frame_short
                                                      : drivers::UdpDrop::frame_multipart),
                 "a {}-byte datagram dropped as {}", in.size(), drivers::udp_drop_name(why));
    return;
  }
  const udp::FrameHeader* h = &fh;
  FUZZ_EXPECT(h->request_id == be16(in.data()) && h->sequence == be16(in.data() + 2) &&
                   h->total == 1 && h->reserved == be16(in.data() + 6),
               "parse_request fields differ from the bytes");
  char out[udp::kHeaderSize];
  udp::write_header(out, *h);
  FUZZ_EXPECT(std::memcmp(out, in.data(), udp::kHeaderSize) == 0,
               "write_header does not give back the header it parsed");
}

void check_split(uint16_t id, std::string_view reply) {
  const size_t n = udp::datagram_count(reply.size());
  const size_t cap = udp::kMaxDatagrams * udp::kMaxData;
  std::string joined;
  size_t seen = 0;
  udp::for_each_datagram(id, reply, [&](std::string_view head, std::string_view body) {
    FUZZ_EXPECT(head.size() == udp::kHeaderSize, "frame header of {} bytes", head.size());
    FUZZ_EXPECT(be16(head.data()) == id && be16(head.data() + 2) == seen &&
                     be16(head.data() + 4) == n && be16(head.data() + 6) == 0,
                 "datagram {} of {}: header {} {} {} {}", seen, n, be16(head.data()),
                 be16(head.data() + 2), be16(head.data() + 4), be16(head.data() + 6));
    FUZZ_EXPECT(!body.empty() && body.size() <= udp::kMaxData, "datagram body of {} bytes",
                 body.size());
    FUZZ_EXPECT(seen + 1 == n || body.size() == udp::kMaxData, "short datagram {} of {}", seen,
                 n);
    if (reply.size() < 100000) joined.append(body);
    ++seen;
  });
  FUZZ_EXPECT(seen == n && n <= udp::kMaxDatagrams, "{} datagrams, count says {}", seen, n);
  FUZZ_EXPECT(n == (std::min(reply.size(), cap) + udp::kMaxData - 1) / udp::kMaxData,
               "{} datagrams for {} bytes", n, reply.size());
  if (reply.size() < 100000) FUZZ_EXPECT(joined == reply, "datagrams do not give back the reply");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  check_request(in);
  const uint16_t id = size >= 2 ? be16(in.data()) : 0;
  if (size >= 4 && data[0] == 0xff) {
    // A long reply: only its length matters, the bytes are a zeroed buffer made once.
    static const std::vector<char> big(udp::kMaxDatagrams * udp::kMaxData + 3 * udp::kMaxData);
    const size_t len = (size_t{data[1]} << 16 | size_t{data[2]} << 8 | data[3]) * 8;
    check_split(id, std::string_view(big.data(), std::min(len, big.size())));
  } else {
    check_split(id, in);
  }
  return 0;
}
