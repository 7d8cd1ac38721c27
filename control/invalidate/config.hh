// cachet-invalidate's configuration: the scalar options in one table (section, key, default,
// range, description) that the TOML reader, the embedded default config and docs/INVALIDATE.md
// follow, plus the [[pool]] destinations and the [[rule]] table-to-key mappings.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cachet::invalidate {

// One destination pool: either servers addressed with ketama, or one router that fans out.
struct PoolConfig {
  std::string name;
  std::vector<std::string> servers;  // "host:port[:weight] [name]", as twemproxy writes them
  std::string router;                // "host:port" of twemproxy/mcrouter; excludes servers
  std::string hash = "md5";          // key hash on the ketama ring: md5 or fnv1a_64
  int64_t holdoff_s = 0;             // > 0: `delete <key> <holdoff_s>` (refuses add that long)
  int line = 0;                      // where the pool was defined, for messages
};

// One table's row changes mapped to key templates ("user:{id}").
struct RuleConfig {
  std::string schema = "public";
  std::string table;
  std::vector<std::string> keys;
  int line = 0;
};

struct Config {
  // [source]
  std::string source_conninfo = "dbname=postgres";
  std::string source_slot = "cachet_invalidate";
  std::string source_publication = "cachet_invalidate";
  bool source_manage_publication = true;
  std::string source_message_prefix = "cachet";
  int64_t source_feedback_interval_ms = 100;
  int64_t source_retry_max_ms = 5000;
  // [pipeline]
  int64_t pipeline_threads = 2;
  int64_t pipeline_max_inflight = 4096;
  int64_t pipeline_unit_rows = 1000;
  // [batch]
  int64_t batch_max_keys = 128;
  int64_t batch_delay_us = 2000;
  int64_t batch_window = 4;
  int64_t batch_timeout_ms = 2000;
  // [spool]
  std::string spool_dir = "/var/lib/cachet-invalidate";
  int64_t spool_max_bytes = int64_t{1} << 30;
  // [auditor]
  double auditor_sample_rate = 0.001;
  int64_t auditor_delay_ms = 1000;
  // [control]
  std::string control_socket;
  std::string control_log_level = "info";
  // [metrics]
  int64_t metrics_port = 9212;

  std::vector<PoolConfig> pools = {PoolConfig{"local", {"127.0.0.1:11211"}, "", "md5", 0, 0}};
  std::vector<RuleConfig> rules;
};

// One scalar option: where it lives in Config, its range and what it means.
struct Option {
  std::string_view section, key;
  std::variant<int64_t Config::*, double Config::*, std::string Config::*, bool Config::*> member;
  double lo, hi;  // numbers only
  std::string_view description;
  std::string name() const { return std::string(section) + "." + std::string(key); }
};
const std::vector<Option>& options();

// Reads TOML text over the defaults in *out. Unknown sections or keys, wrong types, values out
// of range, malformed server specs and key templates fail with *error naming the key, the pool
// or rule and the line. `origin` names the file. *out is unchanged on failure.
bool parse_config(std::string_view toml_text, std::string_view origin, Config* out,
                  std::string* error);
bool load_config_file(const std::string& path, Config* out, std::string* error);

// The embedded default configuration: every option with its default and description, the
// default pool and a commented example rule; parse_config reads it back to Config{}.
std::string default_config_text();

}  // namespace cachet::invalidate
