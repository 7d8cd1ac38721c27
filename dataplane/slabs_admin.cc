// The slabs admin commands, as proto_text.c's process_slabs_command and slabs.c's
// do_slabs_reassign decide them.
#include "dataplane/slabs_admin.hh"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <string>

namespace cachet::dataplane {

namespace {

constexpr std::string_view kOk = "OK\r\n";
constexpr std::string_view kError = "ERROR\r\n";
constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format\r\n";

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

// Pages class `id` holds. Class 0 is memcached's pool of pages taken back from classes; the
// store never takes pages back into a pool (it moves them class to class), so it is empty.
uint64_t pages_of(store::Store& store, int32_t id) {
  if (id == 0) return 0;
  for (const store::ClassStats& c : store.class_stats())
    if (c.id == static_cast<unsigned>(id)) return c.total_pages;
  return 0;
}

std::string_view reassign(store::Store& store, int32_t src, int32_t dst) {
  if (src == dst) return "SAME src and dst class are identical\r\n";
  const auto classes = static_cast<int32_t>(store.slab_classes());
  if (src == -1) {  // any class with a page to spare, other than dst
    src = -1;
    for (const store::ClassStats& c : store.class_stats()) {
      if (static_cast<int32_t>(c.id) != dst && c.total_pages > 1) {
        src = static_cast<int32_t>(c.id);
        break;
      }
    }
  }
  if (src < 0 || src > classes || dst < 0 || dst > classes)
    return "BADCLASS invalid src or dst class id\r\n";
  if (pages_of(store, src) < 2) return "NOSPARE source class has no spare pages\r\n";
  return kOk;
}

}  // namespace

void slabs_command(const text::Request& req, store::Store& store, Settings& settings,
                   common::ByteBuf& out) {
  const size_t ntok = req.nargs + 2u;  // memcached's count: tokens + 1
  std::string_view sub = req.nargs ? req.args[0] : std::string_view();
  std::string_view reply = kError;
  if (ntok == 5 && sub == "reassign") {
    int32_t src = 0, dst = 0;
    if (!text::safe_strtol(req.args[1], &src) || !text::safe_strtol(req.args[2], &dst)) {
      reply = kBadFormat;
    } else {
      reply = reassign(store, src, dst);
    }
  } else if (ntok >= 4 && sub == "automove") {
    uint32_t level = 0;
    double ratio = 0;
    if (req.args[1] == "ratio") {
      if (ntok >= 5 && safe_strtod(req.args[2], &ratio)) reply = kOk;
    } else if (!text::safe_strtoul(req.args[1], &level)) {
      reply = kBadFormat;
    } else if (level <= 2) {
      std::atomic_ref<int>(settings.slab_automove).store(static_cast<int>(level));
      reply = kOk;
    }
  }
  if (!req.noreply) out.append(reply);
}

}  // namespace cachet::dataplane
