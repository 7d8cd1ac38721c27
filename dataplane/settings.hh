// Everything cachetd is configured with, composed from each module's options. Filled from the
// command line (dataplane/flags.cc) or, later, by cachet-control.
#pragma once

#include <string>

#include "dataplane/tunables.hh"
#include "drivers/dpdk/options.hh"
#include "drivers/driver.hh"
#include "store/store.hh"

namespace cachet::dataplane {

struct Settings {
  store::Options store;
  drivers::DriverOptions net;
  drivers::dpdk::Options dpdk;  // used with --driver dpdk
  std::string driver = "uring";  // --driver uring|dpdk
  TunableValues tunables;        // start-up values of the run-time tunables (-v counts verbosity)
  std::string takeover;          // --takeover: the running cachetd's admin socket to replace
  unsigned maintenance_threads = 1;  // --maintenance-threads: the maintenance engine's arena
};

}  // namespace cachet::dataplane
