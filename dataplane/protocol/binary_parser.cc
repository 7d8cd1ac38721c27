// The binary protocol parser: header framing and the per-opcode extras/key/body checks of
// memcached 1.6.18's try_read_command_binary and dispatch_bin_command.
#include "dataplane/protocol/binary_parser.hh"

#include <cstring>

namespace cachet::dataplane::binary {

namespace {

inline uint8_t u8(const char* p) {
  return static_cast<uint8_t>(*p);
}
inline uint16_t be16(const char* p) {
  return static_cast<uint16_t>(u8(p) << 8 | u8(p + 1));
}
inline uint32_t be32(const char* p) {
  return static_cast<uint32_t>(be16(p)) << 16 | be16(p + 2);
}
inline uint64_t be64(const char* p) {
  return static_cast<uint64_t>(be32(p)) << 32 | be32(p + 4);
}

// The loud form of a quiet opcode (memcached rewrites c->cmd the same way); false if op is not
// a quiet opcode.
bool unquiet(uint8_t op, Opcode* loud) {
  switch (static_cast<Opcode>(op)) {
    case Opcode::setq:
      *loud = Opcode::set;
      return true;
    case Opcode::addq:
      *loud = Opcode::add;
      return true;
    case Opcode::replaceq:
      *loud = Opcode::replace;
      return true;
    case Opcode::deleteq:
      *loud = Opcode::del;
      return true;
    case Opcode::incrementq:
      *loud = Opcode::increment;
      return true;
    case Opcode::decrementq:
      *loud = Opcode::decrement;
      return true;
    case Opcode::quitq:
      *loud = Opcode::quit;
      return true;
    case Opcode::flushq:
      *loud = Opcode::flush;
      return true;
    case Opcode::appendq:
      *loud = Opcode::append;
      return true;
    case Opcode::prependq:
      *loud = Opcode::prepend;
      return true;
    case Opcode::getq:
      *loud = Opcode::get;
      return true;
    case Opcode::getkq:
      *loud = Opcode::getk;
      return true;
    case Opcode::gatq:
      *loud = Opcode::gat;
      return true;
    case Opcode::gatkq:
      *loud = Opcode::gatk;
      return true;
    default:
      return false;
  }
}

// The header fields the length checks look at.
struct Lengths {
  uint8_t ext;
  uint16_t key;
  uint32_t body;
};

// A storage request: value length, and either its value or the decision to swallow it.
void parse_update(ParseResult& r, const Lengths& n, std::string_view in, ValueMax value_max) {
  Request& q = r.req;
  q.cmd = Cmd::update;
  const uint32_t vlen = n.body - n.key - n.ext;  // the dispatch checks keep this >= 0
  if (vlen > value_max(n.key)) {
    // memcached refuses the item before reading its value ("Too large.") and swallows it.
    q.too_large = true;
    r.swallow = vlen;
    return;
  }
  const size_t need = r.consumed + vlen;
  if (in.size() < need) {
    r.status = ParseStatus::need_more;
    r.need = need;
    r.consumed = 0;
    return;
  }
  q.value = in.substr(r.consumed, vlen);
  r.consumed = need;
}

// dispatch_bin_command's per-opcode checks. Sets q.cmd (invalid when a check fails).
void dispatch(ParseResult& r, const Lengths& n, std::string_view ext, std::string_view in,
              ValueMax value_max) {
  Request& q = r.req;
  const bool empty = n.ext == 0 && n.key == 0 && n.body == 0;
  auto check = [&q](bool ok, Cmd cmd) { q.cmd = ok ? cmd : Cmd::invalid; };
  switch (q.base) {
    case Opcode::version:
      return check(empty, Cmd::version);
    case Opcode::noop:
      return check(empty, Cmd::noop);
    case Opcode::quit:
      return check(empty, Cmd::quit);
    case Opcode::flush:
      check(n.key == 0 && n.body == n.ext && (n.ext == 0 || n.ext == 4), Cmd::flush);
      if (n.ext == 4) q.exptime = be32(ext.data());
      return;
    case Opcode::set:
    case Opcode::add:
    case Opcode::replace:
      if (!(n.ext == 8 && n.key != 0 && n.body >= n.key + 8u)) return check(false, Cmd::update);
      q.flags = be32(ext.data());
      q.exptime = be32(ext.data() + 4);
      return parse_update(r, n, in, value_max);
    case Opcode::append:
    case Opcode::prepend:
      if (!(n.key > 0 && n.ext == 0)) return check(false, Cmd::update);
      return parse_update(r, n, in, value_max);
    case Opcode::get:
    case Opcode::getk:
      q.with_key = q.base == Opcode::getk;
      q.with_value = true;
      return check(n.ext == 0 && n.body == n.key && n.key > 0, Cmd::get);
    case Opcode::del:
      return check(n.key > 0 && n.ext == 0 && n.body == n.key, Cmd::del);
    case Opcode::increment:
    case Opcode::decrement:
      check(n.key > 0 && n.ext == 20 && n.body == n.key + 20u, Cmd::delta);
      if (q.cmd == Cmd::delta) {
        q.delta = be64(ext.data());
        q.initial = be64(ext.data() + 8);
        q.exptime = be32(ext.data() + 16);
      }
      return;
    case Opcode::stat:
      return check(n.ext == 0, Cmd::stat);
    case Opcode::touch:
    case Opcode::gat:
    case Opcode::gatk:
      q.with_key = q.base == Opcode::gatk;
      q.with_value = q.base != Opcode::touch;
      check(n.ext == 4 && n.key != 0, Cmd::touch);
      if (q.cmd == Cmd::touch) q.exptime = be32(ext.data());
      return;
    case Opcode::sasl_list_mechs:
      // SASL is off: memcached answers "Unknown command" and swallows body - key bytes.
      check(empty, Cmd::unknown);
      return;
    case Opcode::sasl_auth:
    case Opcode::sasl_step:
      check(n.ext == 0 && n.key != 0, Cmd::unknown);
      if (q.cmd == Cmd::unknown) r.swallow = n.body - n.key;
      return;
    default:
      // Including VERBOSITY, which memcached 1.6.18 does not dispatch. memcached swallows the
      // whole body length after having consumed the extras and key, so it eats extlen + keylen
      // bytes of what follows; that is reproduced byte for byte.
      q.cmd = Cmd::unknown;
      r.swallow = n.body;
      return;
  }
}

}  // namespace

std::string_view status_text(Status s) {
  switch (s) {
    case Status::ok:
      return "";
    case Status::key_enoent:
      return "Not found";
    case Status::key_eexists:
      return "Data exists for key.";
    case Status::e2big:
      return "Too large.";
    case Status::einval:
      return "Invalid arguments";
    case Status::not_stored:
      return "Not stored.";
    case Status::delta_badval:
      return "Non-numeric server-side value for incr or decr";
    case Status::unknown_command:
      return "Unknown command";
    case Status::enomem:
      return "Out of memory";
  }
  return "";
}

ParseResult parse(std::string_view in, ValueMax value_max) {
  ParseResult r;
  if (in.size() < kHeaderSize) {
    r.need = kHeaderSize;
    return r;
  }
  const char* p = in.data();
  if (u8(p) != kRequestMagic) {
    r.status = ParseStatus::close;
    return r;
  }
  const Lengths n{u8(p + 4), be16(p + 2), be32(p + 8)};
  const size_t head = kHeaderSize + n.ext + n.key;
  if (head > kReadBufferSize) {
    // memcached waits for the extras and key in its fixed read buffer; when they cannot fit,
    // the full buffer ends the connection.
    if (in.size() >= kReadBufferSize) r.status = ParseStatus::close;
    r.need = kReadBufferSize;
    return r;
  }
  if (in.size() < head) {
    r.need = head;
    return r;
  }
  Request& q = r.req;
  q.opcode = u8(p + 1);
  std::memcpy(&q.opaque, p + 12, 4);
  q.cas = be64(p + 16);
  q.key = in.substr(kHeaderSize + n.ext, n.key);
  r.status = ParseStatus::ready;
  r.consumed = head;
  if (n.key > n.body || n.key + n.ext > n.body) {
    q.cmd = Cmd::bad_body;
    return r;
  }
  if (n.key > kKeyMax) {
    q.cmd = Cmd::invalid;
    return r;
  }
  q.quiet = unquiet(q.opcode, &q.base);
  if (!q.quiet) q.base = static_cast<Opcode>(q.opcode);
  dispatch(r, n, in.substr(kHeaderSize, n.ext), in, value_max);
  return r;
}

}  // namespace cachet::dataplane::binary
