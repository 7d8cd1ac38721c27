// Lease tokens: 64-bit, unpredictable to clients, never 0 or 1 (1 answers a hot miss) and never
// in mcrouter's 0x7aceb00c space (it rewrites tokens there when it pairs leases across
// failover). SipHash-2-4 (libsodium) of a per-worker counter under a key drawn at start-up:
// no syscall, no lock, and knowing earlier tokens tells nothing of the next.
#pragma once

#include <cstdint>

namespace cachet::dataplane {

class TokenSource {
 public:
  // worker: distinct per thread, so that two workers never issue the same token.
  explicit TokenSource(unsigned worker);
  uint64_t next();

  static bool valid(uint64_t token) { return token > 1 && (token >> 32) != kMcrouterSpace; }
  static constexpr uint64_t kMcrouterSpace = 0x7aceb00c;

 private:
  unsigned char key_[16];
  uint64_t counter_;
};

}  // namespace cachet::dataplane
