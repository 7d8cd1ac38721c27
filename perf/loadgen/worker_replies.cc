// Worker's reply side: matching stream bytes and UDP datagrams to requests in flight,
// validating them with ReplyParser, counting and timing them.
#include <fmt/core.h>

#include <charconv>
#include <cstring>

#include "perf/loadgen/worker.hh"

namespace cachet::perf {
namespace {
constexpr size_t kMaxPending = 4u << 20;  // more unparsed input than any valid reply needs
}

void Worker::on_recv(uint32_t c, std::string_view bytes) {
  if (c == probe_conn_) return on_probe(bytes);
  if (!conns_[c].alive) return;
  uint64_t now = rx_now_ ? rx_now_ : common::mono_ns();
  if (opt_.udp)
    on_datagram(c, bytes, now);
  else
    on_stream(c, bytes, now);
}

void Worker::on_closed(uint32_t c, int err) {
  if (c == probe_conn_) {
    probe_conn_ = UINT32_MAX;
    probe_edge_ = -1;
    return;
  }
  kill(
      c,
      err ? fmt::format("connection {} failed: {}", c, std::strerror(err))
          : fmt::format("server closed connection {} ({} requests unanswered)", c, conns_[c].count),
      st_.conn_errors);
}

void Worker::on_stream(uint32_t c, std::string_view bytes, uint64_t now) {
  Conn& k = conns_[c];
  const bool from_rx = !k.rx.empty();  // else parse in place and keep only the tail
  if (from_rx) k.rx.append(bytes);
  std::string_view in = from_rx ? k.rx.view() : bytes;
  size_t pos = 0;
  while (k.count > 0) {
    const InFlight& f = k.ring[k.head];
    if (!k.parsing) {
      k.parser.start(f.kind, &k.keys[static_cast<size_t>(k.head) * opt_.multiget], f.nkeys);
      k.parsing = true;
    }
    size_t used = 0;
    ParseResult r = k.parser.feed(in.substr(pos), &used);
    pos += used;
    if (r == ParseResult::need_more) break;
    if (r == ParseResult::error)
      return kill(c, "protocol error: " + k.parser.what(), st_.protocol_errors);
    k.parsing = false;
    finish(k, k.head, now);
  }
  if (k.count == 0 && pos < in.size()) {
    return kill(c, fmt::format("{} bytes arrived with no request outstanding", in.size() - pos),
                st_.protocol_errors);
  }
  if (from_rx)
    k.rx.consume(pos);
  else if (pos < in.size())
    k.rx.append(in.substr(pos));
  if (k.rx.size() > kMaxPending)
    return kill(c, fmt::format("{} bytes buffered without a complete reply", k.rx.size()),
                st_.protocol_errors);
  fill(c, now);
}

// One reply datagram: 8-byte frame header (request id, sequence, total, reserved), then a
// piece of the reply. Pieces of one request id are parsed in arrival order until the reply is
// complete: memcached 1.6 sends each VALUE of a multiget as its own datagram marked 0 of 1, so
// completeness comes from the parser, not from `total`. A gap in a numbered sequence makes the
// request time out rather than fail, as UDP may drop.
void Worker::on_datagram(uint32_t c, std::string_view d, uint64_t now) {
  Conn& k = conns_[c];
  auto be16 = [&](size_t at) {
    return static_cast<uint16_t>((static_cast<uint8_t>(d[at]) << 8) |
                                 static_cast<uint8_t>(d[at + 1]));
  };
  if (d.size() < 8 || be16(4) == 0 || be16(2) >= be16(4)) {
    ++st_.protocol_errors;
    std::string hdr;
    for (size_t i = 0; i < d.size() && i < 8; ++i)
      hdr += fmt::format(" {:02x}", static_cast<uint8_t>(d[i]));
    return note_error(
        fmt::format("malformed UDP frame header ({} byte datagram:{})", d.size(), hdr));
  }
  uint16_t id = be16(0), seq = be16(2);
  uint32_t slot = UINT32_MAX;
  // Requests take consecutive ids in ring order, so the id says where the request sits.
  if (k.count > 0) {
    uint16_t off = static_cast<uint16_t>(id - k.ring[k.head].req_id);
    uint32_t s = (k.head + off) % depth_;
    if (off < k.count && !k.ring[s].done && k.ring[s].req_id == id) slot = s;
  }
  if (slot == UINT32_MAX) return;  // answer to a request already counted as lost
  const InFlight& f = k.ring[slot];
  if (!k.udp_active || k.udp_id != id) {
    if (seq != 0) return;  // the first piece went missing
    k.rx.clear();
    k.udp_active = true;
    k.udp_id = id;
    k.udp_seq = 0;
    k.parser.start(f.kind, &k.keys[static_cast<size_t>(slot) * opt_.multiget], f.nkeys);
  } else if (seq != 0 && seq != k.udp_seq + 1) {
    k.udp_active = false;  // a numbered piece went missing
    return;
  }
  k.udp_seq = seq;
  if (d.size() > 8) k.rx.append(d.substr(8));
  size_t used = 0;
  ParseResult r = k.parser.feed(k.rx.view(), &used);
  k.rx.consume(used);
  if (r == ParseResult::need_more) return;
  k.udp_active = false;
  if (r == ParseResult::done && k.rx.empty()) {
    finish(k, slot, now);
  } else {
    ++st_.protocol_errors;
    note_error(r == ParseResult::error
                   ? "protocol error: " + k.parser.what()
                   : fmt::format("UDP reply has {} bytes after its end", k.rx.size()));
    k.ring[slot].done = true;
    finish(k, UINT32_MAX, now);
  }
  k.rx.clear();
  fill(c, now);
}

// A datagram of the `stats` reply: pieces in arrival order until `END`; each integer STAT is
// kept. A reply to an older probe, or after the wait gave up, is ignored.
void Worker::on_probe(std::string_view d) {
  if (probe_edge_ < 0 || d.size() < 8) return;
  const uint16_t id = static_cast<uint16_t>((static_cast<uint8_t>(d[0]) << 8) |
                                            static_cast<uint8_t>(d[1]));
  if (id != 0xfff0 + probe_edge_) return;
  probe_rx_.append(d.substr(8));
  std::string_view all = probe_rx_.view();
  if (all.size() < 5 || all.substr(all.size() - 5) != "END\r\n") return;
  auto& out = probe_at_[probe_edge_];
  while (!all.empty()) {
    size_t eol = all.find("\r\n");
    std::string_view line = all.substr(0, eol);
    all.remove_prefix(eol == std::string_view::npos ? all.size() : eol + 2);
    if (line.substr(0, 5) != "STAT ") continue;
    line.remove_prefix(5);
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    std::string_view v = line.substr(sp + 1);
    int64_t x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec == std::errc() && p == v.data() + v.size()) {
      out[std::string(line.substr(0, sp))] = x;
    } else if (ec == std::errc() && *p == '.') {  // seconds.micros (rusage_*): keep microseconds
      int64_t frac = 0;
      std::string_view f = v.substr(static_cast<size_t>(p - v.data()) + 1);
      auto [q, ec2] = std::from_chars(f.data(), f.data() + f.size(), frac);
      if (ec2 == std::errc() && q == f.data() + f.size() && f.size() == 6)
        out[std::string(line.substr(0, sp)) + "_us"] = x * 1'000'000 + frac;
    }
  }
  probe_done_[probe_edge_] = true;
  probe_ns_[probe_edge_] = common::mono_ns();
  probe_edge_ = -1;
}

void Worker::finish(Conn& k, uint32_t slot, uint64_t now) {
  if (slot != UINT32_MAX) {
    InFlight& f = k.ring[slot];
    f.done = true;
    const bool server_error = k.parser.server_error();
    if (server_error) {
      ++st_.server_errors;
      note_error(k.parser.what());
    }
    if (uint32_t v = k.parser.value_errors()) {
      st_.value_errors += v;
      note_error(k.parser.what());
    }
    if (phase_ == Phase::run && f.sent_ns >= warm_end_ && now <= end_) {
      uint64_t lat = now - f.sent_ns;
      st_.lat.record(lat);
      ++st_.requests;
      st_.key_ops += f.nkeys;
      last_done_ = now;
      if (f.kind == ReplyKind::get) {
        st_.lat_get.record(lat);
        ++st_.gets;
        st_.get_keys += f.nkeys;
        if (!server_error) {
          st_.hits += k.parser.hits();
          st_.misses += f.nkeys - k.parser.hits();
        }
      } else {
        st_.lat_set.record(lat);
        ++st_.sets;
      }
    } else if (phase_ == Phase::preload && !server_error) {
      ++st_.preload_sets;
    }
  }
  while (k.count > 0 && k.ring[k.head].done) {
    k.head = (k.head + 1) % depth_;
    --k.count;
    --in_flight_;
  }
}

// Counts UDP requests unanswered for --udp-timeout as lost, oldest first, and refills.
void Worker::expire(uint64_t now) {
  const uint64_t limit = static_cast<uint64_t>(opt_.udp_timeout * 1e9);
  for (uint32_t c = 0; c < conns_.size(); ++c) {
    Conn& k = conns_[c];
    if (!k.alive || k.count == 0) continue;
    bool any = false;
    while (k.count > 0 && (k.ring[k.head].done ||
                           (now > k.ring[k.head].sent_ns && now - k.ring[k.head].sent_ns > limit))) {
      if (!k.ring[k.head].done) {
        ++st_.timeouts;
        if (st_.timeouts_are_errors)
          note_error(fmt::format("request {} on connection {} ({}) unanswered after {} s",
                                 k.ring[k.head].req_id, c,
                                 phase_ == Phase::preload ? "preload" : "run", opt_.udp_timeout));
      }
      k.ring[k.head].done = true;
      finish(k, UINT32_MAX, now);
      any = true;
    }
    if (any) fill(c, now);
  }
}

}  // namespace cachet::perf
