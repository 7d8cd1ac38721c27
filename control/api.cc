// The CLI API: one JSON object per line and per connection, e.g. {"cmd":"config_set",
// "key":"dataplane.verbosity","value":"1"}. Replies are {"ok":true,...} or {"ok":false,
// "code":"<code>","error":"<sentence>"}; long operations stream {"progress":...} lines first.
// Codes: usage, unknown_key, bad_value, read_only, unavailable, busy, failed, refused.
#include <unistd.h>

#include "common/log.hh"
#include "control/controller.hh"
#include "control/ctl_client.hh"
#include "control/tunables.hh"

namespace cachet::control {

namespace {

using json = nlohmann::json;

json error(const std::string& code, const std::string& msg) {
  return {{"ok", false}, {"code", code}, {"error", msg}};
}

// The optional fields of requests and the JSON type each must have. Checked before any
// command reads them, so a field of another type is a usage error and never an exception.
constexpr std::pair<const char*, json::value_t> kFieldTypes[] = {
    {"group", json::value_t::string},     {"key", json::value_t::string},
    {"value", json::value_t::string},     {"binary", json::value_t::string},
    {"discard", json::value_t::boolean},  {"discard_cache", json::value_t::boolean},
};

// "" when every known field of req has its type, else the usage error's sentence.
std::string field_type_error(const json& req) {
  for (const auto& [name, type] : kFieldTypes) {
    auto it = req.find(name);
    if (it == req.end() || it->type() == type) continue;
    return fmt::format("field \"{}\" must be a {}", name,
                       type == json::value_t::boolean ? "boolean" : "string");
  }
  return "";
}

// A status request to cachet-invalidate; the control loop waits for it this long at most.
constexpr int kInvalidateTimeoutMs = 2000;

const char* state_name(int s) {
  constexpr const char* kNames[] = {"starting", "running", "backoff", "stopping"};
  return kNames[s];
}

}  // namespace

void Controller::handle_request(int fd, const std::string& line) {
  json req = json::parse(line, nullptr, false);
  json reply;
  const std::string cmd = req.is_object() && req.contains("cmd") && req["cmd"].is_string()
                              ? req["cmd"].get<std::string>()
                              : "";
  const std::string bad_field = cmd.empty() ? "" : field_type_error(req);
  if (cmd.empty()) {
    reply = error("usage", "bad request: expected a JSON object with \"cmd\"");
  } else if (!bad_field.empty()) {
    reply = error("usage", "bad request: " + bad_field);
  } else if (cmd == "ping") {
    reply = {{"ok", true}};
  } else if (cmd == "status") {
    reply = {{"ok", true}, {"status", status_json()}};
  } else if (cmd == "stats") {
    reply = stats_json(req);
  } else if (cmd == "invalidate") {
    reply = invalidate_json();
  } else if (cmd == "config_get") {
    reply = config_get(req);
  } else if (cmd == "config_set") {
    reply = config_set(req);
  } else if (cmd == "upgrade") {
    start_upgrade(fd, req);
    return;
  } else if (cmd == "restart") {
    if (state_ == State::stopping) {
      reply = error("unavailable", "cachet-control is stopping");
    } else if (upgrade_.active) {
      reply = error("busy", "an upgrade is running");
    } else {
      restart_waiters_.push_back(Waiter{fd});
      if (state_ == State::backoff) {
        restart_at_ms_ = now_ms();  // start now instead of after the backoff
      } else if (cur_ && cur_->alive()) {
        common::log::info("restart requested: stopping cachetd pid {}", cur_->pid);
        restart_requested_ = true;
        stop_proc(*cur_);
      }
      return;
    }
  } else if (cmd == "stop") {
    const bool discard = req.value("discard", false);
    common::log::info("stop requested{}", discard ? " (discarding the arena)" : "");
    stop_waiters_.push_back(Waiter{fd});
    begin_shutdown(discard, 0);
    return;
  } else {
    reply = error("usage", fmt::format("unknown command '{}'", cmd));
  }
  send_line(fd, reply);
  close(fd);
}

json Controller::status_json() {
  const int64_t now = now_ms();
  json c = {{"pid", getpid()},
            {"uptime_s", (now - started_ms_) / 1000},
            {"socket", socket_path_},
            {"config", origin_},
            {"metrics", metrics_fd_ >= 0
                            ? fmt::format("http://127.0.0.1:{}/metrics", metrics_port_)
                            : std::string("off")}};
  json d = {{"state", state_name(static_cast<int>(state_))},
            {"restarts", restarts_},
            {"arena", arena_},
            {"upgrading", upgrade_.active}};
  if (cur_) {
    d["pid"] = cur_->alive() ? json(cur_->pid) : json(nullptr);
    d["binary"] = cur_->plan.binary;
    d["version"] = cur_->version;
    d["admin"] = cur_->endpoint.describe();
    d["tcp_port"] = cur_->plan.settings.net.tcp_port;
    d["udp_port"] = cur_->plan.settings.net.udp_port;
    d["listen"] = cur_->plan.settings.net.listen;
    d["threads"] = cur_->plan.settings.net.threads;
    d["memory_mb"] = cur_->plan.settings.store.memory_mb;
    d["driver"] = cur_->plan.settings.driver;
    if (cur_->alive()) d["running_s"] = (now - cur_->started_ms) / 1000;
    std::string args;
    for (const std::string& a : cur_->plan.args) args += (args.empty() ? "" : " ") + a;
    d["args"] = args;
  }
  if (!last_exit_.empty()) d["last_exit"] = last_exit_;
  if (state_ == State::backoff) d["restart_in_ms"] = std::max<int64_t>(0, restart_at_ms_ - now);
  json s = {{"control", c}, {"dataplane", d}};
  if (!last_upgrade_.is_null()) s["last_upgrade"] = last_upgrade_;
  if (!config_.invalidate_socket.empty()) s["invalidate"] = invalidate_summary();
  return s;
}

json Controller::invalidate_json() {
  if (config_.invalidate_socket.empty())
    return error("unavailable", "no invalidation daemon configured (set invalidate.socket to "
                                "cachet-invalidate's control.socket)");
  json r = control_call(config_.invalidate_socket, {{"cmd", "status"}}, kInvalidateTimeoutMs);
  if (!r.value("ok", false))
    return error("unavailable", fmt::format("cachet-invalidate on {} does not answer: {}",
                                            config_.invalidate_socket, r.value("error", "")));
  return {{"ok", true}, {"invalidate", r["status"]}};
}

json Controller::invalidate_summary() {
  json r = invalidate_json();
  if (!r.value("ok", false))
    return {{"socket", config_.invalidate_socket}, {"state", "unreachable"},
            {"error", r.value("error", "")}};
  const json& st = r["invalidate"];
  const json source = st.value("source", json::object());
  int up = 0, servers = 0;
  uint64_t spooled = 0;
  for (const json& p : st.value("pools", json::array()))
    for (const json& srv : p.value("servers", json::array())) {
      ++servers;
      up += srv.value("state", "") == "up";
      spooled += srv.value("spool_deletes", uint64_t{0});
    }
  json out = {{"socket", config_.invalidate_socket},
              {"pid", st.value("pid", 0)},
              {"state", source.value("state", "")},
              {"confirmed_lsn", source.value("confirmed_lsn", "")},
              {"lag_seconds", source.value("lag_seconds", 0.0)},
              {"servers_up", fmt::format("{}/{}", up, servers)},
              {"spool_deletes", spooled}};
  if (!source.value("error", "").empty()) out["error"] = source["error"];
  return out;
}

json Controller::stats_json(const json& req) {
  const std::string group = req.value("group", "");
  if (group != "" && group != "settings" && group != "items" && group != "slabs")
    return error("usage", fmt::format("unknown stats group '{}' (settings, items or slabs)", group));
  if (!cur_ || !cur_->alive() || !cur_->ready_ms)
    return error("unavailable", fmt::format("cachetd is not serving (state {})",
                                            state_name(static_cast<int>(state_))));
  StatList stats;
  std::string err;
  if (!admin_stats(cur_->endpoint, group, 3000, &stats, &err)) return error("failed", err);
  json out = json::array();
  for (const auto& [n, v] : stats) out.push_back({n, v});
  return {{"ok", true}, {"stats", out}};
}

json Controller::config_get(const json& req) {
  const std::string key = req.value("key", "");
  StatList settings;
  std::string err;
  const bool up = cur_ && cur_->alive() && cur_->ready_ms &&
                  admin_stats(cur_->endpoint, "settings", 3000, &settings, &err);
  json list = json::array();
  const Config defaults;
  for (const DataplaneTunable& t : dataplane_tunables()) {
    if (!key.empty() && key != t.full_name()) continue;
    const std::string* v = up ? find_stat(settings, t.settings_key) : nullptr;
    if (!v) {
      if (key.empty()) continue;  // not offered by this cachetd, or cachetd is down
      if (!up) return error("unavailable", fmt::format("{}: cachetd is not serving now", key));
      return error("unknown_key", fmt::format("{} is not supported by this cachetd ({})", key,
                                              cur_->version));
    }
    const OptionInfo* o = find_option(t.full_name());
    list.push_back({{"key", t.full_name()},
                    {"value", *v},
                    {"default", o ? value_text(defaults, *o) : ""},
                    {"owner", "cachetd"},
                    {"runtime", true},
                    {"description", t.description}});
  }
  for (const OptionInfo& o : options()) {
    if (find_dataplane_tunable(o.name())) continue;
    if (key.empty() ? !o.runtime : key != o.name()) continue;
    list.push_back({{"key", o.name()},
                    {"value", value_text(config_, o)},
                    {"default", value_text(defaults, o)},
                    {"owner", "cachet-control"},
                    {"runtime", o.runtime},
                    {"description", o.description}});
  }
  if (!key.empty() && list.empty())
    return error("unknown_key",
                 fmt::format("unknown key '{}'; `cachetctl config get` lists the keys", key));
  json r = {{"ok", true}, {"tunables", list}};
  if (!up) r["note"] = "cachetd is not serving: its tunables are not listed";
  return r;
}

json Controller::config_set(const json& req) {
  if (!req.contains("key") || !req["key"].is_string() || !req.contains("value") ||
      !req["value"].is_string())
    return error("usage", "config_set needs \"key\" and \"value\" strings");
  const std::string key = req["key"].get<std::string>();
  const std::string value = req["value"].get<std::string>();
  std::string err;
  if (const DataplaneTunable* t = find_dataplane_tunable(key)) {
    int64_t v;
    if (!parse_tunable_value(*t, value, &v, &err)) return error("bad_value", err);
    StatList settings;
    if (!cur_ || !cur_->alive() || !cur_->ready_ms ||
        !admin_stats(cur_->endpoint, "settings", 3000, &settings, &err))
      return error("unavailable", fmt::format("{}: cachetd is not serving now", key));
    const std::string* before = find_stat(settings, t->settings_key);
    if (!before)
      return error("unknown_key", fmt::format("{} is not supported by this cachetd ({})", key,
                                              cur_->version));
    const std::string previous = *before;
    std::string reply;
    const std::string cmd = tunable_command(*t, v);
    if (!admin_call(cur_->endpoint, cmd, false, 3000, &reply, &err) || reply != "OK")
      return error("failed", err.empty() ? fmt::format("cachetd answered '{}'", reply) : err);
    // Kept in the config: restarts and upgrades start cachetd with it (a start flag too).
    if (const OptionInfo* o = find_option(key)) set_option(config_, *o, value, &err);
    admin_stats(cur_->endpoint, "settings", 3000, &settings, &err);
    const std::string* after = find_stat(settings, t->settings_key);
    common::log::info("config: {} = {} (was {})", key, value, previous);
    return {{"ok", true}, {"key", key}, {"value", after ? *after : value}, {"previous", previous}};
  }
  const OptionInfo* o = find_option(key);
  if (!o)
    return error("unknown_key",
                 fmt::format("unknown key '{}'; `cachetctl config get` lists the keys", key));
  if (!o->runtime)
    return error("read_only", fmt::format("{} is set at start only (config file or flags after "
                                          "--); it is {} now",
                                          key, value_text(config_, *o)));
  Config next = config_;
  if (!set_option(next, *o, value, &err)) return error("bad_value", err);
  const std::string previous = value_text(config_, *o);
  if (key == "metrics.port" && next.metrics_port != metrics_port_ &&
      !set_metrics_port(next.metrics_port, &err))
    return error("failed", fmt::format("metrics.port: {}", err));
  config_ = next;
  common::log::set_level(config_.control_log_level);
  backoff_.configure(config_.supervisor_backoff_initial_ms, config_.supervisor_backoff_max_ms);
  common::log::info("config: {} = {} (was {})", key, value, previous);
  return {{"ok", true}, {"key", key}, {"value", value_text(config_, *o)}, {"previous", previous}};
}

}  // namespace cachet::control
