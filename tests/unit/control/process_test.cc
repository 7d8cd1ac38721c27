// The restart backoff rule, wait-status messages, and child processes (spawn, capture).
#include "control/process.hh"

#include "control/controller.hh"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cachet::control {
namespace {

TEST(Backoff, DoublesUpToTheMax) {
  Backoff b(100, 1000);
  const int64_t stable = 60000;
  EXPECT_EQ(b.next_delay(10, stable), 100);
  EXPECT_EQ(b.next_delay(10, stable), 200);
  EXPECT_EQ(b.next_delay(10, stable), 400);
  EXPECT_EQ(b.next_delay(10, stable), 800);
  EXPECT_EQ(b.next_delay(10, stable), 1000);
  EXPECT_EQ(b.next_delay(10, stable), 1000);
  EXPECT_EQ(b.streak(), 6u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(b.next_delay(0, stable), 1000);  // no overflow
}

TEST(Backoff, StableRunStartsAgain) {
  Backoff b(100, 30000);
  b.next_delay(10, 5000);
  b.next_delay(10, 5000);
  EXPECT_EQ(b.next_delay(10, 5000), 400);
  EXPECT_EQ(b.next_delay(5000, 5000), 100);  // ran long enough: back to the first delay
  EXPECT_EQ(b.next_delay(10, 5000), 200);
  b.reset();
  EXPECT_EQ(b.next_delay(10, 5000), 100);
}

TEST(Backoff, Reconfigure) {
  Backoff b(100, 30000);
  b.configure(50, 20);  // max below initial: the initial delay is the bound
  EXPECT_EQ(b.next_delay(0, 1000), 50);
  EXPECT_EQ(b.next_delay(0, 1000), 50);
}

TEST(Process, DescribeWaitStatus) {
  EXPECT_EQ(describe_wait_status(3 << 8), "exited with status 3");
  EXPECT_EQ(describe_wait_status(9), "killed by signal 9 (Killed)");
}

TEST(Process, RunCapture) {
  std::string out, err;
  int status = -1;
  ASSERT_TRUE(run_capture({"/bin/sh", "-c", "echo hello; echo oops >&2; exit 5"}, 5000, &out,
                          &status, &err))
      << err;
  EXPECT_EQ(status, 5);
  EXPECT_EQ(out, "hello\noops\n");
  out.clear();
  EXPECT_FALSE(run_capture({"/bin/sleep", "10"}, 200, &out, &status, &err));
  EXPECT_NE(err.find("did not finish"), std::string::npos) << err;
}

TEST(Process, SpawnReportsExecFailure) {
  pid_t pid = -1;
  int fd = -1;
  std::string err;
  EXPECT_FALSE(spawn({"/nonexistent/cachetd", "-p", "1"}, &pid, &fd, &err));
  EXPECT_NE(err.find("cannot run /nonexistent/cachetd"), std::string::npos) << err;
  EXPECT_FALSE(spawn({}, &pid, &fd, &err));
}

TEST(Process, SpawnGivesOutputAndOwnGroup) {
  pid_t pid = -1;
  int fd = -1;
  std::string err;
  ASSERT_TRUE(spawn({"/bin/sh", "-c", "echo $$; cut -d' ' -f5 /proc/$$/stat"}, &pid, &fd, &err)) << err;
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  EXPECT_NE(out.find(std::to_string(pid)), std::string::npos) << out;
  // own process group: pgid == pid
  EXPECT_NE(out.find(std::string(1, '\n').append(std::to_string(pid))), std::string::npos) << out;
}

TEST(Process, FindByAdminSocketSeesLiveProcessesOnly) {
  const std::string prefix = "/tmp/cachet-process-test-" + std::to_string(getpid()) + ".cachetd.";
  EXPECT_TRUE(find_by_admin_socket(prefix).empty());
  pid_t pid = -1;
  int fd = -1;
  std::string err;
  // sh's own command line carries the flag (as $0 and $1 of the script).
  ASSERT_TRUE(spawn({"/bin/sh", "-c", "sleep 30; :", "--admin-socket", prefix + "3"}, &pid, &fd,
                    &err))
      << err;
  EXPECT_EQ(find_by_admin_socket(prefix), std::vector<pid_t>{pid});
  EXPECT_TRUE(find_by_admin_socket(prefix + "4").empty());
  kill(-pid, SIGKILL);  // its process group (spawn gives it one): sh and its sleep
  // A zombie holds nothing: it is not listed even before it is reaped.
  for (int i = 0; i < 500 && !find_by_admin_socket(prefix).empty(); ++i) usleep(2000);
  EXPECT_TRUE(find_by_admin_socket(prefix).empty());
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  close(fd);
}

TEST(Upgrade, PortGapFromTheNewCachetdsLog) {
  EXPECT_DOUBLE_EQ(port_gap_ms("cachet warn: takeover: DPDK port serving again 12.5 ms after the "
                               "predecessor was asked to stop polling (the port hand-over gap)\n"),
                   12.5);
  EXPECT_EQ(port_gap_ms("cachet info: serving\n"), -1);
}

}  // namespace
}  // namespace cachet::control
