// Formats the stats replies. Off the hot path: plain code, a few snprintf calls.
#include "dataplane/stats_report.hh"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "dataplane/format.hh"
#include "dataplane/version.hh"

namespace cachet::dataplane {

namespace {

void append_timeval(common::ByteBuf& out, std::string_view name, const timeval& tv) {
  char buf[48];
  int n = std::snprintf(buf, sizeof buf, "%ld.%06ld", static_cast<long>(tv.tv_sec),
                        static_cast<long>(tv.tv_usec));
  append_stat(out, name, std::string_view(buf, static_cast<size_t>(n)));
}

// "STAT <prefix><id>:<field> <value>\r\n"
void append_class_stat(common::ByteBuf& out, std::string_view prefix, unsigned id,
                       std::string_view field, uint64_t value) {
  out.append("STAT ");
  out.append(prefix);
  append_dec(out, id);
  out.push_back(':');
  out.append(field);
  out.push_back(' ');
  append_dec(out, value);
  out.append("\r\n");
}

}  // namespace

void append_memory_stats(common::ByteBuf& out, const store::StoreStats& st) {
  append_stat(out, "slabs_moved_inline", st.slabs_moved_inline);
  append_stat(out, "crash_orphans_freed", st.crash_orphans_freed);
  append_stat(out, "transient_items", st.transient_items);
  append_stat(out, "transient_added", st.transient_added);
  append_stat(out, "transient_reaped", st.transient_reaped);
  append_stat(out, "transient_untracked", st.transient_untracked);
  append_stat(out, "transient_bytes", st.transient_bytes);
  append_stat(out, "kv_bytes", st.kv_bytes);
  append_stat(out, "mem_bytes", st.mem_bytes);
  // Memory items hold (their chunks, the index, the wheel) per byte of key and value stored:
  // header, index entry and slab rounding, as memcached's per-item overhead is counted.
  char buf[32];
  const double per = st.kv_bytes ? static_cast<double>(st.mem_bytes) / st.kv_bytes : 0.0;
  const int n = std::snprintf(buf, sizeof buf, "%.3f", per);
  append_stat(out, "mem_per_kv_byte", std::string_view(buf, static_cast<size_t>(n)));
}

void append_general_stats(common::ByteBuf& out, const GeneralStats& g, const Settings& settings) {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  append_stat(out, "pid", static_cast<uint64_t>(getpid()));
  append_stat(out, "uptime", g.now >= g.started ? g.now - g.started : 0);
  append_stat(out, "time", g.now);
  append_stat(out, "version", kVersion);
  append_stat(out, "pointer_size", 8 * sizeof(void*));
  append_timeval(out, "rusage_user", ru.ru_utime);
  append_timeval(out, "rusage_system", ru.ru_stime);
  append_stat(out, "max_connections", settings.net.max_conns);
  append_stat(out, "curr_connections", g.net.curr_connections);
  append_stat(out, "total_connections", g.net.total_connections);
  append_stat(out, "rejected_connections", g.net.rejected_connections);
#define CACHET_X(name, desc)                                   \
  append_stat(out, #name, g.counters.name);                    \
  if (std::string_view(#name) == "get_misses") {               \
    /* only the store knows why a get missed */                \
    append_stat(out, "get_expired", g.store.get_expired);      \
    append_stat(out, "get_flushed", g.store.get_flushed);      \
  }
  CACHET_DATAPLANE_STATS(CACHET_X)
#undef CACHET_X
  append_stat(out, "bytes_read", g.net.bytes_read);
  append_stat(out, "bytes_written", g.net.bytes_written);
  append_stat(out, "limit_maxbytes", g.store.limit_maxbytes);
  append_stat(out, "threads", settings.net.threads);
  append_stat(out, "hash_power_level", g.store.hash_power_level);
  append_stat(out, "hash_bytes", g.store.hash_bytes);
  append_stat(out, "hash_is_expanding", g.store.hash_is_expanding);
  append_stat(out, "slab_reassign_rescues", g.store.slab_reassign_rescues);
  append_stat(out, "slab_reassign_evictions_nomem", g.store.slab_reassign_evictions_nomem);
  append_stat(out, "slab_reassign_busy_items", g.store.slab_reassign_busy_items);
  append_stat(out, "slab_reassign_running", g.store.slab_reassign_running);
  append_stat(out, "slabs_moved", g.store.slabs_moved);
  append_stat(out, "bytes", g.store.bytes);
  append_stat(out, "curr_items", g.store.curr_items);
  append_stat(out, "total_items", g.store.total_items);
  append_stat(out, "slab_global_page_pool", g.store.slab_global_page_pool);
  append_stat(out, "expired_unfetched", g.store.expired_unfetched);
  append_stat(out, "evicted_unfetched", g.store.evicted_unfetched);
  append_stat(out, "evictions", g.store.evictions);
  append_stat(out, "reclaimed", g.store.reclaimed);
  append_stat(out, "crawler_reclaimed", g.store.crawler_reclaimed);
  append_stat(out, "crawler_items_checked", g.store.crawler_items_checked);
  // Cachet's own figures follow memcached's.
  append_stat(out, "crash_dropped", g.store.crash_dropped);  // torn items dropped after a crash
  // hidden items: deleted values kept for stale reads, lease placeholders, hold-off tombstones
  append_stat(out, "hidden_items", g.store.hidden_items);
#define CACHET_X(name, desc) append_stat(out, #name, g.counters.name);
  CACHET_DIALECT_STATS(CACHET_X)
#undef CACHET_X
  append_memory_stats(out, g.store);
  // UDP on every driver: datagrams, and those not answered (or reply datagrams not sent) by
  // reason (drivers/udp_policy.hh).
  append_stat(out, "udp_datagrams_in", g.net.datagrams_in);
  append_stat(out, "udp_datagrams_out", g.net.datagrams_out);
  for (size_t i = 1; i < g.net.udp_drops.n.size(); ++i) {
    std::string name = "udp_drop_";
    name += drivers::udp_drop_name(static_cast<drivers::UdpDrop>(i));
    append_stat(out, name, g.net.udp_drops.n[i]);
  }
  for (const auto& [name, value] : g.extra) append_stat(out, name, value);
  out.append("END\r\n");
}

void append_settings_stats(common::ByteBuf& out, const Settings& s, const TunableValues& t) {
  char buf[32];
  append_stat(out, "maxbytes", s.store.memory_mb * 1024 * 1024);
  append_stat(out, "maxconns", s.net.max_conns);
  append_stat(out, "tcpport", s.net.tcp_port);
  append_stat(out, "udpport", s.net.udp_port);
  append_stat(out, "inter", s.net.listen.empty() ? std::string_view("NULL") : s.net.listen);
  append_stat(out, "verbosity", static_cast<uint64_t>(t.verbosity));
  append_stat(out, "evictions", "on");
  int n = std::snprintf(buf, sizeof buf, "%.2f", s.store.growth_factor);
  append_stat(out, "growth_factor", std::string_view(buf, static_cast<size_t>(n)));
  append_stat(out, "chunk_size", s.store.chunk_min);
  append_stat(out, "num_threads", s.net.threads);
  append_stat(out, "cas_enabled", "yes");
  append_stat(out, "binding_protocol", "ascii");
  append_stat(out, "item_size_max", s.store.item_size_max);
  append_stat(out, "slab_reassign", "yes");
  append_stat(out, "slab_automove", static_cast<uint64_t>(t.slab_automove));
  n = std::snprintf(buf, sizeof buf, "%.2f", (100 - t.slab_automove_threshold) / 100.0);
  append_stat(out, "slab_automove_ratio", std::string_view(buf, static_cast<size_t>(n)));
  append_stat(out, "lru_crawler", "yes");
  append_stat(out, "flush_enabled", "yes");
  append_stat(out, "hash_algorithm", "xxh3");
  append_stat(out, "driver", s.driver);
  append_stat(out, "maintenance_threads", s.maintenance_threads);
  // Cachet's run-time tunables not already shown under memcached's names.
#define CACHET_X(name, def, lo, hi, desc)                                            \
  if (std::string_view(#name) != "verbosity" && std::string_view(#name) != "slab_automove") \
    append_stat(out, #name, static_cast<uint64_t>(t.name));
  CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
  out.append("END\r\n");
}

void append_item_stats(common::ByteBuf& out, const std::vector<store::ClassStats>& classes) {
  for (const auto& c : classes) {
    if (c.number == 0) continue;  // memcached lists classes holding items
    append_class_stat(out, "items:", c.id, "number", c.number);
    append_class_stat(out, "items:", c.id, "age", c.age);
    append_class_stat(out, "items:", c.id, "mem_requested", c.mem_requested);
    append_class_stat(out, "items:", c.id, "evicted", c.evicted);
    append_class_stat(out, "items:", c.id, "evicted_nonzero", c.evicted_nonzero);
    append_class_stat(out, "items:", c.id, "evicted_time", c.evicted_time);
    append_class_stat(out, "items:", c.id, "outofmemory", c.outofmemory);
    append_class_stat(out, "items:", c.id, "reclaimed", c.reclaimed);
    append_class_stat(out, "items:", c.id, "expired_unfetched", c.expired_unfetched);
    append_class_stat(out, "items:", c.id, "evicted_unfetched", c.evicted_unfetched);
  }
  out.append("END\r\n");
}

void append_slab_stats(common::ByteBuf& out, const std::vector<store::ClassStats>& classes,
                       uint64_t total_malloced) {
  uint64_t active = 0;
  for (const auto& c : classes) {
    if (c.total_pages == 0) continue;  // memcached lists classes owning pages
    ++active;
    append_class_stat(out, "", c.id, "chunk_size", c.chunk_size);
    append_class_stat(out, "", c.id, "chunks_per_page", c.chunks_per_page);
    append_class_stat(out, "", c.id, "total_pages", c.total_pages);
    append_class_stat(out, "", c.id, "total_chunks", c.total_chunks);
    append_class_stat(out, "", c.id, "used_chunks", c.used_chunks);
    append_class_stat(out, "", c.id, "free_chunks", c.free_chunks);
    append_class_stat(out, "", c.id, "free_chunks_end", 0);  // dead in memcached too, kept at 0
    append_class_stat(out, "", c.id, "get_hits", c.get_hits);
    append_class_stat(out, "", c.id, "cmd_set", c.cmd_set);
    append_class_stat(out, "", c.id, "delete_hits", c.delete_hits);
    append_class_stat(out, "", c.id, "incr_hits", c.incr_hits);
    append_class_stat(out, "", c.id, "decr_hits", c.decr_hits);
    append_class_stat(out, "", c.id, "cas_hits", c.cas_hits);
    append_class_stat(out, "", c.id, "cas_badval", c.cas_badval);
    append_class_stat(out, "", c.id, "touch_hits", c.touch_hits);
  }
  append_stat(out, "active_slabs", active);
  append_stat(out, "total_malloced", total_malloced);
  out.append("END\r\n");
}

}  // namespace cachet::dataplane
