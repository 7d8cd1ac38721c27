// mcrouter's lease dialect, server side ("Scaling Memcache at Facebook", 3.2.1): lease-get,
// lease-set and metaget, with memcached-style replies. The lease states are the meta
// protocol's anti-stampede states (dataplane/marks.hh), so mg and lease-get see each other's
// refills.
//   lease-get <key>   hit:  VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n
//                     miss: LVALUE <key> <token> <flags> <bytes>\r\n<data>\r\nEND\r\n, a fresh
//                           token, or 1 (a hot miss: wait and retry) while another client's
//                           refill is in flight; data is the stale value when one is held
//   lease-set <key> <token> <flags> <exptime> <bytes> [noreply]
//                     STORED (the live token: a normal item, the lease ends), STALE_STORED
//                     (not live, but a stale or leased entry: stored, still stale), NOT_STORED
//   metaget <key>     META <key> age: <s>; exptime: <s|-1>; from: unknown; is_transient: <0|1>
#pragma once

#include "common/byte_buf.hh"
#include "dataplane/item_rules.hh"
#include "dataplane/lease_token.hh"
#include "dataplane/protocol/text_parser.hh"

namespace cachet::dataplane {

// One worker's lease executor. Not thread safe: used only by its worker's thread.
class LeaseExecutor {
 public:
  LeaseExecutor(ItemRules& rules, unsigned worker) : rules_(rules), tokens_(worker) {}

  // Runs a Cmd::lease_get, lease_set or metaget request (its key hashed to `hash`) and
  // appends the reply (nothing for a lease-set with noreply).
  void execute(const text::Request& req, uint64_t hash, common::ByteBuf& out);

 private:
  void lease_get(const text::Request& req, uint64_t hash, common::ByteBuf& out);
  void lease_set(const text::Request& req, uint64_t hash, common::ByteBuf& out);
  void metaget(const text::Request& req, uint64_t hash, common::ByteBuf& out);

  ItemRules& rules_;
  TokenSource tokens_;
};

}  // namespace cachet::dataplane
