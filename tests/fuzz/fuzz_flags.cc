// Fuzz target: cachetd's command line (dataplane/daemon/flags.cc). The input is the arguments,
// separated by NUL bytes. Invariants: nothing crashes; a refused command line says why (and
// names a flag); the same arguments parse the same way twice (getopt's global state is reset);
// an accepted one gives the store one worker per thread and options the store accepts.
#include <string>
#include <vector>

#include "dataplane/daemon/flags.hh"
#include "store/arena.hh"
#include "tests/fuzz/harness.hh"

using namespace cachet;

namespace {

struct Outcome {
  bool ok, help;
  std::string error, settings;
};

Outcome parse(const std::vector<std::string>& args) {
  std::vector<std::string> copy = args;  // getopt may permute argv
  std::vector<char*> argv;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  dataplane::Settings s;
  Outcome o{};
  o.ok = dataplane::parse_flags(static_cast<int>(copy.size()), argv.data(), s, &o.error, &o.help);
  if (o.ok && !o.help) {
    FUZZ_EXPECT(s.store.workers == s.net.threads, "{} store workers for {} threads",
                 s.store.workers, s.net.threads);
    store::Geometry g{};
    std::string why;
    FUZZ_EXPECT(store::Geometry::compute(s.store.memory_mb << 20, s.store.item_size_max,
                                          s.store.chunk_min, s.store.growth_factor, &g, &why),
                 "flags accepted, store options refused: {}", why);
  }
  o.settings = fmt::format("{} {} {} {} {} {} {} {} {} {} {}", s.net.tcp_port, s.net.udp_port,
                           s.net.listen, s.net.threads, s.net.max_conns, s.store.memory_mb,
                           s.store.item_size_max, s.store.chunk_min, s.store.growth_factor,
                           s.store.shm, s.tunables.verbosity);
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args = {"cachetd"};
  std::string cur;
  for (size_t i = 0; i < size && args.size() < 64; ++i) {
    if (data[i] == 0) {
      args.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(data[i]));
    }
  }
  if (!cur.empty()) args.push_back(cur);
  const Outcome a = parse(args), b = parse(args);
  FUZZ_EXPECT(a.ok || a.error.find('-') != std::string::npos ||
                   a.error.find("argument") != std::string::npos,
               "a refused command line without the flag or argument named: '{}'", a.error);
  FUZZ_EXPECT(a.ok == b.ok && a.help == b.help && a.error == b.error && a.settings == b.settings,
               "the same arguments parsed differently: '{}' / '{}'", a.error, b.error);
  return 0;
}
