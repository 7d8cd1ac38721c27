// Prometheus text exposition (format 0.0.4) of cachetd's stats and cachet-control's own
// counters. cachetd's stats take the names of the Prometheus memcached_exporter
// (memcached_current_items, memcached_commands_total{command="get",status="hit"}, ...), so
// existing memcached dashboards work; what only Cachet has is named cachet_*.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "control/admin_client.hh"

namespace cachet::control {

// cachet-control's own figures.
struct ControlFigures {
  bool dataplane_up = false;       // cachetd answered this scrape
  double control_uptime_s = 0;
  uint64_t restarts = 0;           // cachetd restarts after a crash
  uint64_t upgrades_ok = 0, upgrades_refused = 0, upgrades_failed = 0;
  double last_upgrade_serve_s = 0;  // 0 until an upgrade completed
  double last_upgrade_total_s = 0;
  double backoff_s = 0;             // delay before the pending restart, 0 when none
};

// The whole /metrics body. Any of the stat lists may be empty (cachetd unreachable).
std::string format_metrics(const StatList& general, const StatList& settings,
                           const StatList& items, const StatList& slabs,
                           const ControlFigures& control);

// Prometheus text: samples, with one HELP and TYPE line before the first sample of each name.
class MetricsWriter {
 public:
  // labels: `a="x",b="y"` or empty.
  void sample(std::string_view name, std::string_view type, std::string_view help,
              std::string_view labels, double v);
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  std::set<std::string> declared_;
};

// A metric name made of [a-zA-Z0-9_:] from any stat name.
std::string sanitize_metric_name(std::string_view s);

// An HTTP/1.0 reply to one request: GET /metrics gets body(); other paths 404, other
// methods 405. `body` is called only for /metrics.
template <class BodyFn>
std::string http_reply(std::string_view request, BodyFn body);

std::string http_message(int code, std::string_view reason, std::string_view content_type,
                         std::string_view body);

template <class BodyFn>
std::string http_reply(std::string_view request, BodyFn body) {
  std::string_view line = request.substr(0, request.find("\r\n"));
  auto sp1 = line.find(' ');
  auto sp2 = line.find(' ', sp1 == std::string_view::npos ? 0 : sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos)
    return http_message(400, "Bad Request", "text/plain", "bad request\n");
  std::string_view method = line.substr(0, sp1);
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (method != "GET" && method != "HEAD")
    return http_message(405, "Method Not Allowed", "text/plain", "only GET\n");
  if (path == "/metrics" || path.rfind("/metrics?", 0) == 0) {
    std::string b = body();
    return http_message(200, "OK", "text/plain; version=0.0.4; charset=utf-8",
                        method == "HEAD" ? std::string_view() : std::string_view(b));
  }
  if (path == "/")
    return http_message(200, "OK", "text/html",
                        "<html><body><a href=\"/metrics\">cachet metrics</a></body></html>\n");
  return http_message(404, "Not Found", "text/plain", "not found; try /metrics\n");
}

}  // namespace cachet::control
