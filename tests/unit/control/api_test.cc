// The CLI API's request checks (control/api.cc) on a Controller that supervises no cachetd:
// a field of the wrong JSON type is a usage error (it once ended cachet-control with an
// uncaught exception), and requests that need cachetd say it is unavailable.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "control/controller.hh"

namespace cachet::control {
namespace {

// The reply line the controller writes for one request (it closes the connection after it).
nlohmann::json ask(Controller& c, const std::string& line) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  c.handle_request(sv[1], line);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = recv(sv[0], buf, sizeof buf, MSG_DONTWAIT)) > 0) got.append(buf, n);
  close(sv[0]);
  EXPECT_EQ(n, 0) << "the connection of '" << line << "' was left open";
  return nlohmann::json::parse(got, nullptr, false);
}

TEST(Api, FieldOfTheWrongTypeIsAUsageError) {
  Config config;
  config.control_log_level = "error";
  Controller c(config, {}, "test");
  for (const char* line : {R"({"cmd":"stats","group":5})", R"({"cmd":"config_get","key":[1]})",
                           R"({"cmd":"stop","discard":"yes"})",
                           R"({"cmd":"upgrade","discard_cache":1})"}) {
    const nlohmann::json r = ask(c, line);
    ASSERT_TRUE(r.is_object()) << line;
    EXPECT_EQ(r.value("ok", true), false) << line;
    EXPECT_EQ(r.value("code", ""), "usage") << line;
    EXPECT_NE(r.value("error", "").find("must be a"), std::string::npos) << r.dump();
  }
}

TEST(Api, RequestsThatNeedCachetdSayItIsNotServing) {
  Config config;
  config.control_log_level = "error";
  Controller c(config, {}, "test");
  EXPECT_EQ(ask(c, R"({"cmd":"stats","group":"items"})").value("code", ""), "unavailable");
  EXPECT_EQ(ask(c, R"({"cmd":"upgrade"})").value("code", ""), "unavailable");
  EXPECT_EQ(ask(c, R"({"cmd":"ping"})").value("ok", false), true);
  EXPECT_EQ(ask(c, "not json").value("code", ""), "usage");
}

}  // namespace
}  // namespace cachet::control
