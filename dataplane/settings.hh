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
  int slab_automove = 1;         // `slabs automove 0|1|2` (memcached's default); recorded only
  std::string takeover;          // --takeover: the running cachetd's admin socket to replace
};

}  // namespace cachet::dataplane
