// Everything cachetd is configured with, composed from each module's options. Filled from the
// command line (dataplane/flags.cc) or, later, by cachet-control.
#pragma once

#include <string>

#include "drivers/dpdk/options.hh"
#include "drivers/driver.hh"
#include "store/store.hh"

namespace cachet::dataplane {

struct Settings {
  store::Options store;
  drivers::DriverOptions net;
  drivers::dpdk::Options dpdk;  // used with --driver dpdk
  std::string driver = "uring";  // --driver uring|dpdk
  int verbosity = 0;             // -v count (memcached's `verbosity` command sets it too)
};

}  // namespace cachet::dataplane
