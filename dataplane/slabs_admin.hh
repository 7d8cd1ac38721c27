// `slabs automove` and `slabs reassign`: memcached 1.6.18's argument checks and reply lines.
#pragma once

#include "common/byte_buf.hh"
#include "dataplane/protocol/text_parser.hh"

namespace cachet::dataplane {

struct ExecShared;

// Runs a Cmd::slabs request and appends memcached's reply (none when noreply applies).
// automove 0|1|2 sets the slab_automove tunable (the maintenance engine's rebalancer mode);
// automove ratio <r> sets the rebalancer's threshold to (1 - r) * 100 percent, as memcached's
// slab_automove_ratio. reassign <src> <dst> is checked and handed to the maintenance engine,
// which moves one page from src to dst in the background (OK); BUSY while a move is running,
// and also when the server runs without an engine (no one to carry it out).
void slabs_command(const text::Request& req, ExecShared& shared, common::ByteBuf& out);

}  // namespace cachet::dataplane
