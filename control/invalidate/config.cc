// Reading and printing cachet-invalidate's TOML configuration (toml++). Every value is checked
// here, before anything starts; errors name the key, the pool or rule and the line.
#include "control/invalidate/config.hh"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <span>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "control/invalidate/ketama.hh"
#include "control/invalidate/key_template.hh"
#include "control/toml_text.hh"

namespace cachet::invalidate {

using control::toml_comment;
using control::toml_quote;
using control::toml_type_name;
using control::toml_where;

namespace {

constexpr double kMaxInt = 9007199254740992.0;  // 2^53: exact in a double

// Keys of a [[pool]] and a [[rule]] table, with their meaning (printed in the default config).
struct TableKey {
  std::string_view key, description;
};
constexpr TableKey kPoolKeys[] = {
    {"name", "the pool's name in metrics and logs (letters, digits, '_', '-', '.')"},
    {"servers", "the pool's servers as twemproxy writes them, \"host:port[:weight] [name]\"; a "
                "key's delete goes to the server ketama names for it, as libmemcached "
                "(KETAMA_WEIGHTED) and twemproxy (distribution: ketama) compute it. The name "
                "(default: host:port, or host alone on port 11211) places the server on the ring "
                "and must be the one the clients use"},
    {"router", "instead of servers: the \"host:port\" of a router (twemproxy, mcrouter) that "
               "routes each delete itself"},
    {"hash", "the clients' key hash on the ring: md5 (libmemcached, twemproxy hash: md5) or "
             "fnv1a_64 (twemproxy's default)"},
    {"holdoff_s", "when > 0, deletes are sent as `delete <key> <holdoff_s>`: the server refuses "
                  "`add` of the key that long (a cold cluster warming up). A server that refuses "
                  "the form gets plain deletes"},
};
constexpr TableKey kRuleKeys[] = {
    {"table", "the table whose committed row changes invalidate keys: \"schema.table\" or "
              "\"table\" (schema public)"},
    {"keys", "key templates: {column} takes the column's value (PostgreSQL's text form) from "
             "the new row (INSERT, UPDATE) and the old row (UPDATE, DELETE); {{ and }} are "
             "braces. Columns outside the table's replica identity need REPLICA IDENTITY FULL "
             "to name the old row's key"},
};

bool known_key(std::span<const TableKey> keys, std::string_view k) {
  for (const TableKey& t : keys)
    if (t.key == k) return true;
  return false;
}

std::string key_list(std::span<const TableKey> keys) {
  std::string s;
  for (const TableKey& t : keys) s += (s.empty() ? "" : ", ") + std::string(t.key);
  return s;
}

// Reads a scalar option from a node into c; false with *why.
bool read_option(Config& c, const Option& o, const toml::node& n, std::string* why) {
  return std::visit(
      [&](auto member) {
        using T = std::remove_reference_t<decltype(c.*member)>;
        if constexpr (std::is_same_v<T, std::string>) {
          auto v = n.value_exact<std::string>();
          if (!v) {
            *why = fmt::format("expected a string, got {}", toml_type_name(n));
            return false;
          }
          c.*member = *v;
        } else if constexpr (std::is_same_v<T, bool>) {
          auto v = n.value_exact<bool>();
          if (!v) {
            *why = fmt::format("expected true or false, got {}", toml_type_name(n));
            return false;
          }
          c.*member = *v;
        } else {
          std::optional<double> v;
          if constexpr (std::is_same_v<T, int64_t>) {
            if (auto i = n.value_exact<int64_t>()) v = static_cast<double>(*i);
          } else {
            v = n.value<double>();
          }
          if (!v || !std::isfinite(*v)) {
            *why = fmt::format("expected {}, got {}",
                               std::is_same_v<T, int64_t> ? "an integer" : "a number",
                               toml_type_name(n));
            return false;
          }
          if (*v < o.lo || *v > o.hi) {
            *why = fmt::format("{} is out of range ({}-{})", *v, o.lo, o.hi);
            return false;
          }
          c.*member = static_cast<T>(*v);
        }
        return true;
      },
      o.member);
}

bool read_string_list(const toml::node& n, std::vector<std::string>* out, std::string* why) {
  const toml::array* arr = n.as_array();
  if (!arr) {
    *why = fmt::format("expected an array of strings, got {}", toml_type_name(n));
    return false;
  }
  out->clear();
  for (const toml::node& e : *arr) {
    auto s = e.value_exact<std::string>();
    if (!s) {
      *why = fmt::format("expected an array of strings, found a {}", toml_type_name(e));
      return false;
    }
    out->push_back(*s);
  }
  return true;
}

bool check_pool(const PoolConfig& p, std::string* why) {
  if (p.name.empty() || p.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
                                                 "UVWXYZ0123456789_-.") != std::string::npos) {
    *why = fmt::format("name '{}' must be letters, digits, '_', '-' or '.'", p.name);
    return false;
  }
  if (p.servers.empty() == p.router.empty()) {
    *why = "give either servers or router (not both, not neither)";
    return false;
  }
  KeyHash h;
  if (!parse_key_hash(p.hash, &h)) {
    *why = fmt::format("hash '{}' is not md5 or fnv1a_64", p.hash);
    return false;
  }
  if (p.holdoff_s < 0 || p.holdoff_s > 86400) {
    *why = fmt::format("holdoff_s {} is out of range (0-86400)", p.holdoff_s);
    return false;
  }
  std::string host;
  uint16_t port;
  if (!p.router.empty()) return parse_host_port(p.router, &host, &port, why);
  std::set<std::string> seen_addr, seen_name;
  for (const std::string& s : p.servers) {
    ServerSpec spec;
    if (!parse_server_spec(s, &spec, why)) return false;
    if (!seen_addr.insert(spec.address()).second || !seen_name.insert(spec.name).second) {
      *why = fmt::format("server '{}' is listed twice", s);
      return false;
    }
  }
  return true;
}

bool parse_pool(const toml::table& t, PoolConfig* p, std::string* why, std::string* key) {
  for (auto&& [k, node] : t) {
    *key = std::string(k.str());
    if (!known_key(kPoolKeys, k.str())) {
      *why = fmt::format("unknown key (a pool has {})", key_list(kPoolKeys));
      return false;
    }
    bool ok = true;
    if (k == "servers") {
      ok = read_string_list(node, &p->servers, why);
    } else if (k == "holdoff_s") {
      auto v = node.value_exact<int64_t>();
      if (!v) *why = fmt::format("expected an integer, got {}", toml_type_name(node));
      ok = v.has_value();
      if (ok) p->holdoff_s = *v;
    } else {
      auto v = node.value_exact<std::string>();
      if (!v) *why = fmt::format("expected a string, got {}", toml_type_name(node));
      ok = v.has_value();
      if (ok) (k == "name" ? p->name : k == "router" ? p->router : p->hash) = *v;
    }
    if (!ok) return false;
  }
  key->clear();
  return check_pool(*p, why);
}

bool check_template(const std::string& text, std::string* why) {
  KeyTemplate t;
  if (!KeyTemplate::parse(text, &t, why)) return false;
  const std::string_view x = "x";
  std::vector<const std::string_view*> values(t.fields().size(), &x);
  if (auto problem = key_problem(*t.expand(values))) {
    *why = fmt::format("key template '{}' makes keys that are {}", text, *problem);
    return false;
  }
  return true;
}

bool parse_rule(const toml::table& t, RuleConfig* r, std::string* why, std::string* key) {
  bool has_table = false, has_keys = false;
  for (auto&& [k, node] : t) {
    *key = std::string(k.str());
    if (!known_key(kRuleKeys, k.str())) {
      *why = fmt::format("unknown key (a rule has {})", key_list(kRuleKeys));
      return false;
    }
    if (k == "keys") {
      if (!read_string_list(node, &r->keys, why)) return false;
      has_keys = true;
      for (const std::string& text : r->keys)
        if (!check_template(text, why)) return false;
      continue;
    }
    auto v = node.value_exact<std::string>();
    if (!v) {
      *why = fmt::format("expected a string, got {}", toml_type_name(node));
      return false;
    }
    const size_t dot = v->find('.');
    r->schema = dot == std::string::npos ? "public" : v->substr(0, dot);
    r->table = dot == std::string::npos ? *v : v->substr(dot + 1);
    if (r->schema.empty() || r->table.empty() || r->table.find('.') != std::string::npos) {
      *why = fmt::format("'{}' is not \"schema.table\" or \"table\"", *v);
      return false;
    }
    has_table = true;
  }
  key->clear();
  if (!has_table || !has_keys || r->keys.empty()) {
    *why = "a rule needs table and a non-empty keys list";
    return false;
  }
  return true;
}

// Reads an array of tables ([[pool]] or [[rule]]) with `parse` into *out.
template <class T, class Parse>
bool read_tables(const toml::node& node, std::string_view section, std::string_view origin,
                 Parse parse, std::vector<T>* out, std::string* error) {
  const toml::array* arr = node.as_array();
  if (!arr || !arr->is_array_of_tables()) {
    *error = fmt::format("{}: '{}' must be written as [[{}]] tables",
                         toml_where(origin, node.source()), section, section);
    return false;
  }
  out->clear();
  for (const toml::node& e : *arr) {
    T item;
    item.line = e.source().begin ? static_cast<int>(e.source().begin.line) : 0;
    std::string why, key;
    if (!parse(*e.as_table(), &item, &why, &key)) {
      *error = fmt::format("{}: {} {}{}: {}", toml_where(origin, e.source()), section,
                           out->size() + 1, key.empty() ? "" : "." + key, why);
      return false;
    }
    out->push_back(std::move(item));
  }
  return true;
}

}  // namespace

const std::vector<Option>& options() {
  static const std::vector<Option> table = {
      {"source", "conninfo", &Config::source_conninfo, 0, 0,
       "libpq connection string of the database (host, port, dbname, user, ...); the stream's "
       "connection adds replication=database. The role needs the REPLICATION attribute, and "
       "ownership of the rule tables when manage_publication is on"},
      {"source", "slot", &Config::source_slot, 0, 0,
       "logical replication slot (plugin pgoutput), created when missing. Its confirmed "
       "position advances only past transactions whose deletes every pool acknowledged (or "
       "that were spooled); a restart resumes from it"},
      {"source", "publication", &Config::source_publication, 0, 0,
       "publication the slot streams (the rule tables)"},
      {"source", "manage_publication", &Config::source_manage_publication, 0, 0,
       "create the publication when missing and add every rule table to it"},
      {"source", "message_prefix", &Config::source_message_prefix, 0, 0,
       "prefix of the key messages: pg_logical_emit_message(true, '<prefix>', 'key key ...') "
       "inside a transaction deletes those keys when it commits; other prefixes are ignored"},
      {"source", "feedback_interval_ms", &Config::source_feedback_interval_ms, 1, 60000,
       "at most this often the confirmed position is reported to PostgreSQL; shorter means "
       "fewer deletes repeated after a crash"},
      {"source", "retry_max_ms", &Config::source_retry_max_ms, 100, 3600000,
       "longest wait between attempts to reach the database (the wait doubles from 100 ms)"},
      {"pipeline", "threads", &Config::pipeline_threads, 1, 64,
       "TBB worker threads that decode the stream and map rows to keys"},
      {"pipeline", "max_inflight", &Config::pipeline_max_inflight, 16, 1048576,
       "transactions (or parts of large ones) read but not yet settled; at this bound the "
       "daemon stops reading the stream (back-pressure: a slow cache slows the daemon, its "
       "memory stays bounded)"},
      {"pipeline", "unit_rows", &Config::pipeline_unit_rows, 1, 1000000,
       "a transaction with more row changes than this is delivered in parts of this many rows"},
      {"batch", "max_keys", &Config::batch_max_keys, 1, 4096,
       "deletes sent in one packet (one write, pipelined) at most"},
      {"batch", "delay_us", &Config::batch_delay_us, 0, 1000000,
       "how long a delete may wait for others to share its packet"},
      {"batch", "window", &Config::batch_window, 1, 1024,
       "packets in flight (sent, not yet answered) per server connection"},
      {"batch", "timeout_ms", &Config::batch_timeout_ms, 10, 600000,
       "a server that has not answered a packet (or a connection attempt) within this is down: "
       "its deletes go to the spool"},
      {"spool", "dir", &Config::spool_dir, 0, 0,
       "directory of the spool files (one per server: deletes for a server that is down, "
       "replayed in order when it is back) and of the daemon's state file"},
      {"spool", "max_bytes", &Config::spool_max_bytes, 4096, kMaxInt,
       "bound of each server's spool; when it is full the daemon stops confirming and reading "
       "(deletes wait in the database's WAL) and cachet_invalidate_spool_full says so"},
      {"auditor", "sample_rate", &Config::auditor_sample_rate, 0, 1,
       "fraction of delete packets of which the auditor re-checks one key after delay_ms: a "
       "server still holding it with a value stored before the delete is a miss (0 = off)"},
      {"auditor", "delay_ms", &Config::auditor_delay_ms, 1, 3600000,
       "how long after a sampled delete was sent the auditor checks it"},
      {"control", "socket", &Config::control_socket, 0, 0,
       "unix socket (mode 0600) answering status requests (JSON lines, as cachet-control's); "
       "point cachet-control's invalidate.socket at it for `cachetctl invalidate`. Empty = "
       "/run/cachet/invalidate.sock as root, else $XDG_RUNTIME_DIR/cachet/invalidate.sock or "
       "/tmp/cachet-<uid>/invalidate.sock; --socket overrides"},
      {"control", "log_level", &Config::control_log_level, 0, 0,
       "error, warn, info or debug"},
      {"metrics", "port", &Config::metrics_port, 0, 65535,
       "Prometheus text metrics on http://127.0.0.1:<port>/metrics (0 = off)"},
  };
  return table;
}

bool parse_config(std::string_view text, std::string_view origin, Config* out,
                  std::string* error) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    *error = fmt::format("{}: {}", toml_where(origin, e.source()), e.description());
    return false;
  }
  Config c = *out;
  for (auto&& [sec_key, sec_node] : root) {
    const std::string_view sec = sec_key.str();
    if (sec == "pool") {
      if (!read_tables(sec_node, "pool", origin, parse_pool, &c.pools, error)) return false;
      continue;
    }
    if (sec == "rule") {
      if (!read_tables(sec_node, "rule", origin, parse_rule, &c.rules, error)) return false;
      continue;
    }
    const toml::table* sec_table = sec_node.as_table();
    bool known = false;
    for (const Option& o : options()) known |= o.section == sec;
    if (!known || !sec_table) {
      *error = fmt::format("{}: unknown section '{}' (sections: source, pipeline, batch, spool, "
                           "auditor, control, metrics, [[pool]], [[rule]])",
                           toml_where(origin, sec_node.source()), sec);
      return false;
    }
    for (auto&& [key, node] : *sec_table) {
      const std::string name = fmt::format("{}.{}", sec, key.str());
      const Option* o = nullptr;
      for (const Option& x : options())
        if (x.name() == name) o = &x;
      std::string why;
      if (!o) {
        *error = fmt::format("{}: unknown key '{}' (cachet-invalidate --print-default-config "
                             "lists every key)", toml_where(origin, node.source()), name);
        return false;
      }
      if (!read_option(c, *o, node, &why)) {
        *error = fmt::format("{}: {}: {}", toml_where(origin, node.source()), name, why);
        return false;
      }
    }
  }
  std::string why;
  if (c.control_log_level != "error" && c.control_log_level != "warn" &&
      c.control_log_level != "info" && c.control_log_level != "debug")
    why = fmt::format("control.log_level: '{}' is not error, warn, info or debug",
                      c.control_log_level);
  else if (c.spool_dir.empty())
    why = "spool.dir: must name a directory";
  else if (c.source_slot.empty() || c.source_publication.empty() ||
           c.source_message_prefix.empty())
    why = "source.slot, source.publication and source.message_prefix must not be empty";
  else if (c.source_slot.size() > 63 ||
           c.source_slot.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") !=
               std::string::npos)
    why = fmt::format("source.slot: '{}' is not a slot name (lower-case letters, digits and "
                      "'_', at most 63)", c.source_slot);
  else if (c.source_publication.size() > 63 ||
           c.source_publication.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                                                  "QRSTUVWXYZ0123456789_") != std::string::npos)
    why = fmt::format("source.publication: '{}' must be letters, digits and '_' (at most 63)",
                      c.source_publication);
  else if (c.pools.empty())
    why = "no [[pool]]: deletes would go nowhere";
  std::set<std::string> names, tables;
  for (const PoolConfig& p : c.pools)
    if (why.empty() && !names.insert(p.name).second)
      why = fmt::format("pool name '{}' is used twice (line {})", p.name, p.line);
  for (const RuleConfig& r : c.rules)
    if (why.empty() && !tables.insert(r.schema + "." + r.table).second)
      why = fmt::format("two rules for table {}.{} (line {}): list all its keys in one rule",
                        r.schema, r.table, r.line);
  if (!why.empty()) {
    *error = fmt::format("{}: {}", origin, why);
    return false;
  }
  *out = std::move(c);
  return true;
}

bool load_config_file(const std::string& path, Config* out, std::string* error) {
  std::string text;
  return control::read_config_file(path, &text, error) && parse_config(text, path, out, error);
}

std::string default_config_text() {
  const Config d;
  std::string s =
      "# cachet-invalidate configuration: every option with its default.\n"
      "# Committed row changes of the [[rule]] tables and key messages become deletes sent to\n"
      "# every [[pool]]. docs/INVALIDATE.md explains each part.\n";
  std::string_view section;
  for (const Option& o : options()) {
    if (o.section != section) {
      section = o.section;
      s += fmt::format("\n[{}]\n", section);
    }
    s += toml_comment(o.description);
    const std::string value = std::visit(
        [&](auto member) -> std::string {
          using T = std::remove_cvref_t<decltype(d.*member)>;
          if constexpr (std::is_same_v<T, std::string>) return toml_quote(d.*member);
          else if constexpr (std::is_same_v<T, bool>) return d.*member ? "true" : "false";
          else if constexpr (std::is_same_v<T, double>) return fmt::format("{:.6g}", d.*member);
          else return std::to_string(d.*member);
        },
        o.member);
    s += fmt::format("{} = {}\n", o.key, value);
  }
  s += "\n# Destinations: every pool gets every delete. Give several [[pool]] tables for several\n"
       "# clusters. Keys of a pool:\n";
  for (const TableKey& k : kPoolKeys) s += toml_comment(fmt::format("{}: {}", k.key, k.description));
  for (const PoolConfig& p : d.pools) {
    std::string servers;
    for (const std::string& sv : p.servers) servers += (servers.empty() ? "" : ", ") + toml_quote(sv);
    s += fmt::format("[[pool]]\nname = {}\nservers = [{}]\nhash = {}\nholdoff_s = {}\n",
                     toml_quote(p.name), servers, toml_quote(p.hash), p.holdoff_s);
  }
  s += "\n# Row changes that invalidate keys (none by default; key messages need no rule).\n"
       "# Keys of a rule:\n";
  for (const TableKey& k : kRuleKeys) s += toml_comment(fmt::format("{}: {}", k.key, k.description));
  s += "# Example:\n# [[rule]]\n# table = \"public.users\"\n"
       "# keys = [\"user:{id}\", \"profile:{id}:v2\"]\n";
  return s;
}

}  // namespace cachet::invalidate
