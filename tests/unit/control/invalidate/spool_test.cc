// The spool file: order, replay and acknowledgement, persistence across reopen, a torn tail.
#include "control/invalidate/spool.hh"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace cachet::invalidate {
namespace {

using Keys = std::vector<std::string>;

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cachet-spool-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/s.spool";
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_, path_;
};

TEST_F(SpoolTest, ReplayInOrderThenEmpty) {
  Spool s;
  std::string err;
  ASSERT_TRUE(s.open(path_, &err)) << err;
  EXPECT_TRUE(s.replay_done());
  ASSERT_TRUE(s.append({{"a", "b"}, {"c"}}, &err)) << err;
  ASSERT_TRUE(s.append({{"d"}}, &err)) << err;
  EXPECT_EQ(s.pending_deletes(), 4u);
  Keys k;
  uint64_t e1, e2, e3;
  ASSERT_TRUE(s.read_next(&k, &e1));
  EXPECT_EQ(k, (Keys{"a", "b"}));
  ASSERT_TRUE(s.read_next(&k, &e2));
  EXPECT_EQ(k, (Keys{"c"}));
  s.rewind();  // the server did not answer: read again from the last acknowledged record
  ASSERT_TRUE(s.read_next(&k, &e1));
  EXPECT_EQ(k, (Keys{"a", "b"}));
  s.consume(e1);
  EXPECT_EQ(s.pending_deletes(), 2u);
  ASSERT_TRUE(s.read_next(&k, &e2));
  ASSERT_TRUE(s.read_next(&k, &e3));
  EXPECT_EQ(k, (Keys{"d"}));
  EXPECT_TRUE(s.replay_done());
  EXPECT_FALSE(s.read_next(&k, &e3));
  s.consume(e3);
  EXPECT_EQ(s.pending_deletes(), 0u);
  EXPECT_EQ(s.pending_bytes(), 0u);
}

TEST_F(SpoolTest, ReopenResumesAfterTheAcknowledgedRecords) {
  std::string err;
  {
    Spool s;
    ASSERT_TRUE(s.open(path_, &err)) << err;
    ASSERT_TRUE(s.append({{"a"}, {"b"}, {"c"}}, &err)) << err;
    Keys k;
    uint64_t e;
    ASSERT_TRUE(s.read_next(&k, &e));
    s.consume(e);
  }
  Spool s;
  ASSERT_TRUE(s.open(path_, &err)) << err;
  EXPECT_EQ(s.pending_deletes(), 2u);
  Keys k;
  uint64_t e;
  ASSERT_TRUE(s.read_next(&k, &e));
  EXPECT_EQ(k, (Keys{"b"}));
}

TEST_F(SpoolTest, TornTailIsCutOff) {
  std::string err;
  {
    Spool s;
    ASSERT_TRUE(s.open(path_, &err)) << err;
    ASSERT_TRUE(s.append({{"a"}, {"bb"}}, &err)) << err;
  }
  // A crash in the middle of the second record's write, then garbage.
  const auto size = static_cast<off_t>(std::ifstream(path_, std::ios::ate | std::ios::binary).tellg());
  ASSERT_EQ(truncate(path_.c_str(), size - 2), 0);
  {
    std::ofstream f(path_, std::ios::app | std::ios::binary);
    f << "zz";
  }
  Spool s;
  ASSERT_TRUE(s.open(path_, &err)) << err;
  EXPECT_EQ(s.pending_deletes(), 1u);
  Keys k;
  uint64_t e;
  ASSERT_TRUE(s.read_next(&k, &e));
  EXPECT_EQ(k, (Keys{"a"}));
  EXPECT_FALSE(s.read_next(&k, &e));
  ASSERT_TRUE(s.append({{"c"}}, &err)) << err;  // appends after the cut
  ASSERT_TRUE(s.read_next(&k, &e));
  EXPECT_EQ(k, (Keys{"c"}));
}

TEST_F(SpoolTest, NotASpoolFile) {
  { std::ofstream(path_) << "hello, this is not a spool"; }
  Spool s;
  std::string err;
  EXPECT_FALSE(s.open(path_, &err));
  EXPECT_NE(err.find("not a cachet-invalidate spool"), std::string::npos) << err;
}

}  // namespace
}  // namespace cachet::invalidate
