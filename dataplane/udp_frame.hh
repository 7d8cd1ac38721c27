// memcached's UDP frame header (request id, sequence number, datagram count, reserved; 8 bytes,
// big endian) and the split of a reply into datagrams. Pure functions: the one frame parser of every driver.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/function_ref.hh"
#include "drivers/udp_policy.hh"

namespace cachet::dataplane::udp {

inline constexpr size_t kHeaderSize = 8;
// memcached's UDP_MAX_PAYLOAD_SIZE: a reply datagram, header included, is at most this long.
inline constexpr size_t kMaxDatagram = 1400;
inline constexpr size_t kMaxData = kMaxDatagram - kHeaderSize;  // reply bytes per datagram
inline constexpr size_t kMaxDatagrams = 65535;                  // the count is 16 bits

struct FrameHeader {
  uint16_t request_id = 0;
  uint16_t sequence = 0;
  uint16_t total = 0;
  uint16_t reserved = 0;
};

// Reads the header of a request datagram into *h, as memcached does: UdpDrop::none for a
// request, else why memcached would drop it unanswered: frame_short (8 bytes or fewer, no
// request after the header) or frame_multipart (a count other than 1: memcached does not
// reassemble multi-datagram requests). The sequence and reserved fields are not checked
// (memcached ignores them). The one frame check of every driver (Server::datagram calls it).
// Inline: called once per datagram, and the header is read in one load.
inline drivers::UdpDrop parse_request(std::string_view datagram, FrameHeader* h) {
  if (datagram.size() <= kHeaderSize) return drivers::UdpDrop::frame_short;
  auto get16 = [&datagram](size_t at) {
    return static_cast<uint16_t>(static_cast<uint8_t>(datagram[at]) << 8 |
                                 static_cast<uint8_t>(datagram[at + 1]));
  };
  if (get16(4) != 1) return drivers::UdpDrop::frame_multipart;
  *h = FrameHeader{get16(0), get16(2), 1, get16(6)};
  return drivers::UdpDrop::none;
}

// Writes h to dst[0..8).
void write_header(char* dst, const FrameHeader& h);

// Datagrams needed for a reply of n bytes (0 for an empty reply, which sends nothing).
// Replies longer than kMaxDatagrams * kMaxData are cut to that length.
size_t datagram_count(size_t n);

// Splits reply into datagrams and calls emit(head, body) for each, in sequence order: head is
// the datagram's 8-byte frame header, body its share of reply (a view into it, not a copy).
void for_each_datagram(uint16_t request_id, std::string_view reply,
                       common::FunctionRef<void(std::string_view, std::string_view)> emit);

}  // namespace cachet::dataplane::udp
