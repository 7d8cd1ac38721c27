// Lease token generation (see lease_token.hh).
#include "dataplane/lease_token.hh"

#include <sodium.h>

#include <cstdlib>
#include <cstring>

#include "common/log.hh"

namespace cachet::dataplane {

TokenSource::TokenSource(unsigned worker) : counter_(uint64_t{worker} << 48) {
  if (sodium_init() < 0) {
    common::log::error("libsodium failed to initialise; lease tokens cannot be made");
    std::abort();
  }
  randombytes_buf(key_, sizeof key_);
}

uint64_t TokenSource::next() {
  for (;;) {
    unsigned char in[8], out[crypto_shorthash_siphash24_BYTES];
    const uint64_t c = counter_++;
    std::memcpy(in, &c, sizeof in);
    crypto_shorthash_siphash24(out, in, sizeof in, key_);
    uint64_t t;
    std::memcpy(&t, out, sizeof t);
    if (valid(t)) return t;
  }
}

}  // namespace cachet::dataplane
