// UDP frame header encoding and reply splitting, as memcached 1.6.18 frames replies.
#include "dataplane/udp_frame.hh"

#include <algorithm>
#include <bit>
#include <cstring>

namespace cachet::dataplane::udp {

void write_header(char* dst, const FrameHeader& h) {
  // Built in a register and stored once: the reply path reads these 8 bytes back at once, and
  // a wide load over narrow stores still in flight would stall on store forwarding.
  const uint16_t fields[4] = {h.request_id, h.sequence, h.total, h.reserved};
  uint64_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 16 | fields[i];
  if constexpr (std::endian::native == std::endian::little) {
    v = ((v & 0x00ff00ff00ff00ffull) << 8) | ((v >> 8) & 0x00ff00ff00ff00ffull);
    std::memcpy(dst, &v, sizeof v);
  } else {
    for (int i = 0; i < 4; ++i) {
      dst[2 * i] = static_cast<char>(fields[i] >> 8);
      dst[2 * i + 1] = static_cast<char>(fields[i]);
    }
  }
}

size_t datagram_count(size_t n) { return std::min((n + kMaxData - 1) / kMaxData, kMaxDatagrams); }

void for_each_datagram(uint16_t request_id, std::string_view reply,
                       common::FunctionRef<void(std::string_view, std::string_view)> emit) {
  char head[kHeaderSize];
  FrameHeader h;
  h.request_id = request_id;
  h.total = static_cast<uint16_t>(datagram_count(reply.size()));
  for (size_t seq = 0; seq < h.total; ++seq) {
    h.sequence = static_cast<uint16_t>(seq);
    write_header(head, h);
    emit({head, kHeaderSize}, reply.substr(seq * kMaxData, kMaxData));
  }
}

}  // namespace cachet::dataplane::udp
