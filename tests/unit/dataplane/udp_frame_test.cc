// UDP framing: request header parsing and memcached's reply split (1400-byte datagrams, the
// 8-byte header counted in them, sequence numbers and the total in every header).
#include "dataplane/udp_frame.hh"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cachet::dataplane::udp {
namespace {

TEST(UdpFrame, ParseRequest) {
  using drivers::UdpDrop;
  std::string d("\x12\x34\x00\x05\x00\x01\x00\x00get k\r\n", 15);
  FrameHeader h;
  ASSERT_EQ(parse_request(d, &h), UdpDrop::none);
  EXPECT_EQ(h.request_id, 0x1234);
  EXPECT_EQ(h.sequence, 5);
  EXPECT_EQ(h.total, 1);
  EXPECT_EQ(parse_request(d.substr(0, 8), &h), UdpDrop::frame_short);  // no request after it
  EXPECT_EQ(parse_request(d.substr(0, 3), &h), UdpDrop::frame_short);
  d[6] = 0x7f;  // the reserved field is ignored, as memcached ignores it
  EXPECT_EQ(parse_request(d, &h), UdpDrop::none);
  EXPECT_EQ(h.reserved, 0x7f00);
  d[5] = 2;
  EXPECT_EQ(parse_request(d, &h), UdpDrop::frame_multipart);  // not reassembled
  d[4] = 1;
  d[5] = 1;
  EXPECT_EQ(parse_request(d, &h), UdpDrop::frame_multipart);  // total 257
  d[4] = 0;
  d[5] = 0;
  EXPECT_EQ(parse_request(d, &h), UdpDrop::frame_multipart);  // total 0
}

TEST(UdpFrame, WriteHeaderIsBigEndian) {
  char h[kHeaderSize];
  write_header(h, {0xabcd, 0x0102, 0x0304, 0});
  EXPECT_EQ(std::string(h, sizeof h), std::string("\xab\xcd\x01\x02\x03\x04\x00\x00", 8));
}

TEST(UdpFrame, DatagramCount) {
  EXPECT_EQ(kMaxData, 1392u);
  EXPECT_EQ(datagram_count(0), 0u);
  EXPECT_EQ(datagram_count(1), 1u);
  EXPECT_EQ(datagram_count(1392), 1u);
  EXPECT_EQ(datagram_count(1393), 2u);
  EXPECT_EQ(datagram_count(3023), 3u);
  EXPECT_EQ(datagram_count(size_t{1} << 40), kMaxDatagrams);
}

TEST(UdpFrame, SplitCarriesSequenceAndTotal) {
  std::string reply;
  for (int i = 0; reply.size() < 5000; ++i) reply += std::to_string(i) + ",";
  std::vector<std::string> got;
  auto collect = [&](std::string_view head, std::string_view body) {
    EXPECT_EQ(head.size(), kHeaderSize);
    got.emplace_back(std::string(head) + std::string(body));
  };
  for_each_datagram(0x0102, reply, collect);
  ASSERT_EQ(got.size(), datagram_count(reply.size()));
  std::string joined;
  for (size_t i = 0; i < got.size(); ++i) {
    const std::string& d = got[i];
    ASSERT_GE(d.size(), kHeaderSize);
    EXPECT_LE(d.size(), kMaxDatagram);
    if (i + 1 < got.size()) {
      EXPECT_EQ(d.size(), kMaxDatagram);
    }
    EXPECT_EQ(d.substr(0, 2), "\x01\x02");
    EXPECT_EQ(static_cast<uint8_t>(d[2]) * 256 + static_cast<uint8_t>(d[3]), static_cast<int>(i));
    EXPECT_EQ(static_cast<uint8_t>(d[4]) * 256 + static_cast<uint8_t>(d[5]),
              static_cast<int>(got.size()));
    EXPECT_EQ(d.substr(6, 2), std::string(2, '\0'));
    joined += d.substr(kHeaderSize);
  }
  EXPECT_EQ(joined, reply);

  got.clear();
  for_each_datagram(1, "", collect);
  EXPECT_TRUE(got.empty());

  for_each_datagram(9, "END\r\n", collect);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], std::string("\0\x09\0\0\0\x01\0\0END\r\n", 13));
}

}  // namespace
}  // namespace cachet::dataplane::udp
