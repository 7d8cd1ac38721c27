// Arena geometry and persistence: the class table, memory bounds, attach and refusal.
#include "store/arena.hh"

#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/unit/store/helpers.hh"

namespace cachet::store {
namespace {

using testing::open_store;
using testing::read;

TEST(Geometry, ClassesGrowByFactorFrom64ToOnePage) {
  Geometry g{};
  std::string err;
  ASSERT_TRUE(Geometry::compute(64ull << 20, 1 << 20, 64, 1.07, &g, &err)) << err;
  EXPECT_EQ(g.page_size, 1u << 20);
  EXPECT_EQ(g.n_pages, 64u);
  EXPECT_EQ(g.class_size[1], 64u);
  EXPECT_EQ(g.class_size[g.n_classes], 1u << 20);
  for (unsigned i = 2; i <= g.n_classes; ++i) {
    EXPECT_GT(g.class_size[i], g.class_size[i - 1]);
    EXPECT_EQ(g.class_size[i] % 8, 0u);
    if (i < g.n_classes) {
      // Each step is the growth factor, give or take the 8-byte alignment.
      EXPECT_LE(g.class_size[i], g.class_size[i - 1] * 1.07 + 16) << i;
    }
  }
  EXPECT_GT(g.n_classes, 100u);
  EXPECT_LT(g.n_classes, kMaxClasses);
}

TEST(Geometry, RejectsBadOptionsNamingThem) {
  Geometry g{};
  std::string err;
  EXPECT_FALSE(Geometry::compute(64ull << 20, 1 << 20, 64, 0.9, &g, &err));
  EXPECT_NE(err.find("-f"), std::string::npos);
  EXPECT_FALSE(Geometry::compute(64ull << 20, 1 << 20, 8, 1.07, &g, &err));
  EXPECT_NE(err.find("-n"), std::string::npos);
  EXPECT_FALSE(Geometry::compute(0, 1 << 20, 64, 1.07, &g, &err));
  EXPECT_NE(err.find("-m"), std::string::npos);
}

TEST(Arena, NamedArenaKeepsItemsAcrossReopen) {
  std::string path = "/dev/shm/cachet-test-" + std::to_string(getpid());
  {
    auto s = open_store(4, 1, path);
    ASSERT_TRUE(s);
    Worker& w = s->worker(0);
    for (int i = 0; i < 1000; ++i)
      ASSERT_EQ(testing::put(*s, w, "k" + std::to_string(i), "v" + std::to_string(i), i),
                UpdateResult::done);
  }
  {
    auto s = open_store(4, 1, path);
    ASSERT_TRUE(s);
    Worker& w = s->worker(0);
    for (int i = 0; i < 1000; ++i) {
      auto g = read(*s, w, "k" + std::to_string(i));
      ASSERT_TRUE(g) << i;
      EXPECT_EQ(g->value, "v" + std::to_string(i));
      EXPECT_EQ(g->flags, static_cast<uint32_t>(i));
    }
    EXPECT_EQ(s->stats().curr_items, 1000u);
  }
  // Another geometry is refused with a message, and the cache is left alone...
  Options o;
  o.shm = path;
  o.memory_mb = 8;
  std::string err;
  EXPECT_FALSE(Store::open(o, &err));
  EXPECT_NE(err.find("--shm-discard"), std::string::npos) << err;
  {
    auto s = open_store(4, 1, path);
    ASSERT_TRUE(s);
    EXPECT_TRUE(read(*s, s->worker(0), "k1"));
  }
  // ...unless the operator asks to discard it.
  o.discard_incompatible = true;
  auto s = Store::open(o, &err);
  ASSERT_TRUE(s) << err;
  EXPECT_FALSE(read(*s, s->worker(0), "k1"));
  unlink(path.c_str());
}

TEST(Arena, OneProcessAtATime) {
  std::string path = "/dev/shm/cachet-test-lock-" + std::to_string(getpid());
  auto first = open_store(4, 1, path);
  ASSERT_TRUE(first);
  Options o;
  o.shm = path;
  o.memory_mb = 4;
  std::string err;
  EXPECT_FALSE(Store::open(o, &err));
  EXPECT_NE(err.find("in use"), std::string::npos) << err;
  first.reset();
  EXPECT_TRUE(Store::open(o, &err)) << err;
  unlink(path.c_str());
}

TEST(Arena, RefusesAFileThatIsNotAnArena) {
  std::string path = "/dev/shm/cachet-test-junk-" + std::to_string(getpid());
  FILE* f = fopen(path.c_str(), "w");
  fputs("definitely not an arena header, just text that is long enough to read", f);
  fclose(f);
  Options o;
  o.shm = path;
  std::string err;
  EXPECT_FALSE(Store::open(o, &err));
  EXPECT_NE(err.find("not a Cachet arena"), std::string::npos) << err;
  unlink(path.c_str());
}

}  // namespace
}  // namespace cachet::store

#include <sys/wait.h>

#include <cstring>

namespace cachet::store {
namespace {

TEST(Arena, AfterACrashTornItemsAreDroppedAndTheRestServed) {
  std::string path = "/dev/shm/cachet-test-crash-" + std::to_string(getpid());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The crashing process: writes, tears one value in place, dies attached (no destructors).
    auto s = testing::open_store(4, 1, path);
    if (!s) _exit(2);
    Worker& w = s->worker(0);
    for (int i = 0; i < 1000; ++i)
      testing::put(*s, w, "k" + std::to_string(i), "value-" + std::to_string(i));
    common::ByteBuf out;
    s->get(w, "k7", Store::hash("k7"), out, [](const ItemView& v) {
      const_cast<char*>(v.value.data())[0] = 'X';
      return true;
    });
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  auto s = testing::open_store(4, 1, path);  // attaches the arena the child left attached
  ASSERT_TRUE(s);
  Worker& w = s->worker(0);
  EXPECT_FALSE(testing::read(*s, w, "k7"));  // torn: never served
  EXPECT_EQ(s->stats().crash_dropped, 1u);
  for (int i = 0; i < 1000; ++i) {
    if (i == 7) continue;
    auto g = testing::read(*s, w, "k" + std::to_string(i));
    ASSERT_TRUE(g) << i;
    EXPECT_EQ(g->value, "value-" + std::to_string(i));
  }
  // Verified once: a second pass finds nothing more to drop, and new writes work.
  for (int i = 0; i < 1000; ++i) testing::read(*s, w, "k" + std::to_string(i));
  EXPECT_EQ(s->stats().crash_dropped, 1u);
  EXPECT_EQ(testing::put(*s, w, "k7", "again"), UpdateResult::done);
  EXPECT_EQ(testing::read(*s, w, "k7")->value, "again");
  s.reset();
  unlink(path.c_str());
}

}  // namespace
}  // namespace cachet::store
