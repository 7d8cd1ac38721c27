// ByteBuf: append, consume and growth keep the bytes in order.
#include "common/byte_buf.hh"

#include <gtest/gtest.h>

#include <string>

using cachet::common::ByteBuf;

TEST(ByteBuf, AppendConsumeKeepsOrder) {
  ByteBuf b;
  std::string expect;
  for (int i = 0; i < 1000; ++i) {
    std::string piece = std::to_string(i) + ",";
    b.append(piece);
    expect += piece;
    if (i % 7 == 0 && expect.size() >= 3) {
      b.consume(3);
      expect.erase(0, 3);
    }
    ASSERT_EQ(b.view(), expect);
  }
}

TEST(ByteBuf, TruncateAndPrepare) {
  ByteBuf b;
  b.append("hello world");
  b.truncate(5);
  EXPECT_EQ(b.view(), "hello");
  char* p = b.prepare(3);
  p[0] = '!';
  b.commit(1);
  EXPECT_EQ(b.view(), "hello!");
  b.consume(6);
  EXPECT_TRUE(b.empty());
}
