// The dataplane's side of the driver interface: parses requests with the text protocol parser,
// runs them through the executor against the store, and frames UDP replies.
#pragma once

#include <memory>

#include "dataplane/settings.hh"
#include "drivers/driver.hh"
#include "store/store.hh"

namespace cachet::dataplane {

class Server final : public drivers::Handler {
 public:
  // store and settings must outlive the Server. settings.verbosity may be changed by clients.
  Server(store::Store& store, Settings& settings);
  ~Server() override;

  // The driver whose counters `stats` reports (curr_connections, bytes_read, ...). Optional.
  void set_driver(const drivers::Driver* driver);

  void worker_start(unsigned worker) override;
  void* stream_open(unsigned worker) override;
  drivers::StreamStep stream_data(void* state, std::string_view in,
                                  common::ByteBuf& out) override;
  void stream_close(void* state) override;
  bool stream_idle(void* state) override;
  void prefetch(unsigned worker, std::span<const std::string_view> burst, int stage) override;
  void datagram(unsigned worker, std::string_view in, drivers::DatagramSink& reply) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachet::dataplane
