// `slabs automove` and `slabs reassign`: memcached 1.6.18's argument checks and reply lines.
#pragma once

#include "common/byte_buf.hh"
#include "dataplane/protocol/text_parser.hh"
#include "dataplane/settings.hh"
#include "store/store.hh"

namespace cachet::dataplane {

// Runs a Cmd::slabs request and appends memcached's reply (none when noreply applies).
// automove 0|1|2 is recorded in settings.slab_automove (written through std::atomic_ref);
// the store's own page rebalancing does not consult it. reassign answers memcached's checks
// against the store's classes and page counts; a request memcached would accept is answered
// OK without moving a page (the store moves pages itself as classes need them).
void slabs_command(const text::Request& req, store::Store& store, Settings& settings,
                   common::ByteBuf& out);

}  // namespace cachet::dataplane
