// UDP frame header encoding and reply splitting, as memcached 1.6.18 frames replies.
#include "dataplane/udp_frame.hh"

#include <algorithm>
#include <cstring>

namespace cachet::dataplane::udp {

namespace {

inline uint16_t get16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}

inline void put16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v & 0xff);
}

}  // namespace

std::optional<FrameHeader> parse_request(std::string_view d) {
  if (d.size() <= kHeaderSize) return std::nullopt;
  FrameHeader h;
  h.request_id = get16(d.data());
  h.sequence = get16(d.data() + 2);
  h.total = get16(d.data() + 4);
  h.reserved = get16(d.data() + 6);
  if (h.total != 1) return std::nullopt;
  return h;
}

void write_header(char* dst, const FrameHeader& h) {
  put16(dst, h.request_id);
  put16(dst + 2, h.sequence);
  put16(dst + 4, h.total);
  put16(dst + 6, h.reserved);
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
