// The slabs admin commands, as proto_text.c's process_slabs_command and slabs.c's
// do_slabs_reassign decide them.
#include "dataplane/slabs_admin.hh"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

#include "dataplane/executor.hh"
#include "dataplane/protocol/replies.hh"

namespace cachet::dataplane {

namespace {

using reply::kBadFormat;
using reply::kError;
using reply::kOk;

// memcached's safe_strtod: strtod must convert something and end at whitespace or the end.
bool safe_strtod(std::string_view tok, double* out) {
  std::string s(tok);
  errno = 0;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (errno == ERANGE || end == s.c_str()) return false;
  if (*end != '\0' && *end != ' ' && !(*end >= '\t' && *end <= '\r')) return false;
  *out = d;
  return true;
}

std::string_view reply_for(maintenance::Reassign r) {
  switch (r) {
    case maintenance::Reassign::ok: return kOk;
    case maintenance::Reassign::busy: return "BUSY currently processing reassign request\r\n";
    case maintenance::Reassign::badclass: return "BADCLASS invalid src or dst class id\r\n";
    case maintenance::Reassign::nospare: return "NOSPARE source class has no spare pages\r\n";
    case maintenance::Reassign::same: return "SAME src and dst class are identical\r\n";
  }
  return kError;
}

std::string_view reassign(ExecShared& shared, int32_t src, int32_t dst) {
  if (maintenance::Engine* e = shared.maintenance.load(std::memory_order_acquire))
    return reply_for(e->request_move(src, dst));
  // No engine to carry it out: memcached's checks, and BUSY for a request they pass.
  const maintenance::Reassign r = maintenance::check_reassign(shared.store, &src, dst);
  return reply_for(r == maintenance::Reassign::ok ? maintenance::Reassign::busy : r);
}

// memcached's slab_automove_ratio: a class gets a page when its next victim is younger than
// ratio x the others'; the tunable holds the margin, (1 - ratio) in percent.
std::string_view set_ratio(Tunables& tunables, double ratio) {
  if (!(ratio > 0.0 && ratio < 1.0)) return "CLIENT_ERROR slab_automove_ratio must be above 0 and below 1\r\n";
  std::string error;
  const auto pct = static_cast<int64_t>(std::lround((1.0 - ratio) * 100.0));
  return tunables.set("slab_automove_threshold", std::clamp<int64_t>(pct, 1, 99), &error) ? kOk
                                                                                          : kError;
}

}  // namespace

void slabs_command(const text::Request& req, ExecShared& shared, common::ByteBuf& out) {
  Tunables& tunables = shared.tunables;
  const size_t ntok = req.nargs + 2u;  // memcached's count: tokens + 1
  std::string_view sub = req.nargs ? req.args[0] : std::string_view();
  std::string_view reply = kError;
  if (ntok == 5 && sub == "reassign") {
    int32_t src = 0, dst = 0;
    if (!text::safe_strtol(req.args[1], &src) || !text::safe_strtol(req.args[2], &dst)) {
      reply = kBadFormat;
    } else {
      reply = reassign(shared, src, dst);
    }
  } else if (ntok >= 4 && sub == "automove") {
    uint32_t level = 0;
    double ratio = 0;
    if (req.args[1] == "ratio") {
      if (ntok >= 5 && safe_strtod(req.args[2], &ratio)) reply = set_ratio(tunables, ratio);
    } else if (!text::safe_strtoul(req.args[1], &level)) {
      reply = kBadFormat;
    } else if (level <= 2) {
      std::string error;
      if (tunables.set("slab_automove", static_cast<int64_t>(level), &error)) reply = kOk;
    }
  }
  if (!req.noreply) out.append(reply);
}

}  // namespace cachet::dataplane
