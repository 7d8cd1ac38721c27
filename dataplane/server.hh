// The dataplane's side of the driver interface: parses requests with the text protocol parser,
// runs them through the executor against the store, and frames UDP replies.
#pragma once

#include <memory>

#include "dataplane/maintenance/engine.hh"
#include "dataplane/settings.hh"
#include "drivers/driver.hh"
#include "store/store.hh"

namespace cachet::dataplane {

class Server final : public drivers::Handler {
 public:
  // store and settings must outlive the Server. The run-time tunables start from
  // settings.tunables; the Server owns them from then on.
  Server(store::Store& store, const Settings& settings);
  ~Server() override;

  // A driver whose counters `stats` reports (curr_connections, bytes_read, ...), summed over
  // every driver added (at most two); base is the worker id the driver gives its worker 0
  // (DriverOptions::worker_base). Optional.
  void add_driver(const drivers::Driver* driver, unsigned base = 0);
  // The maintenance engine that carries out `slabs reassign` and reports in `stats`. Optional;
  // it must outlive the Server or be unset (nullptr) first.
  void set_maintenance(maintenance::Engine* engine);
  // The run-time tunables (their single owner), for the maintenance engine to read.
  Tunables& tunables();

  void worker_start(unsigned worker) override;
  void* stream_open(unsigned worker, bool admin) override;
  drivers::StreamStep stream_data(void* state, std::string_view in,
                                  common::ByteBuf& out) override;
  void stream_close(void* state) override;
  bool stream_idle(void* state) override;
  void prefetch(unsigned worker, std::span<const std::string_view> burst, int stage) override;
  drivers::UdpDrop datagram(unsigned worker, std::string_view in,
                            drivers::DatagramSink& reply) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachet::dataplane
