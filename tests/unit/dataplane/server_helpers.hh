// Test fixture for the Server as drivers see it: a private store and a Server with `workers`
// workers, a stream connection driven the way a driver drives it, and UDP datagram helpers.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "common/byte_buf.hh"
#include "dataplane/server.hh"
#include "dataplane/settings.hh"
#include "dataplane/udp_frame.hh"
#include "store/store.hh"

namespace cachet::dataplane::testing {

class ServerFixture : public ::testing::Test {
 public:
  explicit ServerFixture(unsigned workers) : workers_(workers) {}

  void SetUp() override {
    settings.store.memory_mb = 8;
    settings.store.item_size_max = 8192;
    settings.store.workers = workers_;
    settings.net.threads = workers_;
    std::string err;
    store = store::Store::open(settings.store, &err);
    ASSERT_TRUE(store) << err;
    server = std::make_unique<Server>(*store, settings);
    for (unsigned w = 0; w < workers_; ++w) server->worker_start(w);
  }

  // A stream connection as a driver drives it: unconsumed input is offered again with more
  // appended; output is "sent" between calls.
  struct Conn {
    explicit Conn(Server& s, unsigned worker = 0) : server(s), state(s.stream_open(worker, false)) {}
    ~Conn() { server.stream_close(state); }

    void feed(std::string_view bytes) {
      pending.append(bytes);
      while (!closed) {
        drivers::StreamStep st = server.stream_data(state, pending, out);
        pending.erase(0, st.consumed);
        max_pending = std::max(max_pending, pending.size());
        const size_t replied = out.size();
        sent.append(out.view());
        out.clear();
        closed = st.close;
        // As a driver: after sending, call again while the last call got anywhere (a get
        // stopped at the output limit consumes nothing until its last key).
        if ((st.consumed == 0 && replied == 0) || pending.empty()) break;
      }
    }

    Server& server;
    void* state;
    std::string pending, sent;
    size_t max_pending = 0;  // the most input ever left unconsumed
    common::ByteBuf out;
    bool closed = false;
  };

  Settings settings;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<Server> server;

 private:
  unsigned workers_;
};

// Collects reply datagrams, each whole (frame header and body).
struct Sink : drivers::DatagramSink {
  void emit(std::string_view head, std::string_view body) override {
    got.emplace_back(std::string(head) + std::string(body));
  }
  std::vector<std::string> got;
};

// A datagram: memcached's frame header, then body.
inline std::string dgram(uint16_t id, std::string_view body, uint16_t seq = 0,
                         uint16_t total = 1) {
  char h[udp::kHeaderSize];
  udp::write_header(h, {id, seq, total, 0});
  return std::string(h, sizeof h) + std::string(body);
}

}  // namespace cachet::dataplane::testing
