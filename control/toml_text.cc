// TOML text helpers (toml++ does the quoting; the comment wrapping is ours).
#include "control/toml_text.hh"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace cachet::control {

std::string toml_quote(std::string_view s) {
  std::ostringstream os;
  os << toml::value<std::string>(std::string(s));
  return os.str();
}

std::string toml_comment(std::string_view text, size_t width) {
  std::string out;
  std::string line = "#";
  std::istringstream words{std::string(text)};
  std::string w;
  while (words >> w) {
    if (line.size() + 1 + w.size() > width && line.size() > 1) {
      out.append(line).push_back('\n');
      line.assign(1, '#');
    }
    line.push_back(' ');
    line.append(w);
  }
  return out + line + "\n";
}

std::string toml_type_name(const toml::node& n) {
  std::ostringstream os;
  os << n.type();
  return os.str();
}

bool read_config_file(const std::string& path, std::string* text, std::string* error) {
  std::ifstream f(path);
  if (!f) {
    *error = fmt::format("cannot read config file {}: {}", path, std::strerror(errno));
    return false;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  *text = ss.str();
  return true;
}

std::string toml_where(std::string_view origin, const toml::source_region& r) {
  if (!r.begin) return std::string(origin);
  return fmt::format("{}:{}", origin, r.begin.line);
}

}  // namespace cachet::control
