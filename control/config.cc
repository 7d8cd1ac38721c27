// Reading, checking and printing cachet-control's configuration (toml++ for the TOML syntax;
// every value is checked here or by cachetd's own flag parser, and errors name the key).
#include "control/config.hh"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "control/toml_text.hh"
#include "dataplane/daemon/flags.hh"

namespace cachet::control {

namespace {

// Accessors for each option's member, by kind.
struct Access {
  int64_t* u = nullptr;
  double* r = nullptr;
  std::string* t = nullptr;
  std::vector<std::string>* l = nullptr;
};

Access access(Config& c, const OptionInfo& o) {
  Access a;
#define CACHET_X_AT_uint(m) a.u = &c.m
#define CACHET_X_AT_real(m) a.r = &c.m
#define CACHET_X_AT_text(m) a.t = &c.m
#define CACHET_X_AT_list(m) a.l = &c.m
#define CACHET_X(S, K, kind, def, lo, hi, flag, rt, desc) \
  if (o.section == #S && o.key == #K) CACHET_X_AT_##kind(S##_##K);
  CACHET_CONTROL_OPTIONS(CACHET_X)
#undef CACHET_X
#define CACHET_X(name, def, lo, hi, desc) \
  if (o.section == "dataplane" && o.key == #name) a.u = &c.dataplane_tunables.name;
  CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
  return a;
}

std::string show_real(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // stays a TOML float
  return s;
}

// Checks a value of a [dataplane] key with cachetd's own parser (flags.cc), so a value control
// accepts is one cachetd accepts.
bool check_with_cachetd(const OptionInfo& o, const std::string& value, std::string* why) {
  if (o.flag.empty() || o.flag == "-v") return true;
  std::string flag(o.flag);
  std::vector<std::string> args = {"cachetd", flag, value};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  dataplane::Settings s;
  bool help = false;
  std::string err;
  if (dataplane::parse_flags(static_cast<int>(args.size()), argv.data(), s, &err, &help))
    return true;
  // cachetd says "-p: '70000' is not a port number (0-65535)"; keep the reason only.
  auto colon = err.find(": ");
  *why = colon == std::string::npos ? err : err.substr(colon + 2);
  return false;
}

bool check_uint(const OptionInfo& o, int64_t v, std::string* why) {
  if (o.hi > o.lo && (v < o.lo || v > o.hi)) {
    *why = fmt::format("{} is out of range ({}-{})", v, o.lo, o.hi);
    return false;
  }
  if (v < 0) {
    *why = fmt::format("{} is negative", v);
    return false;
  }
  return check_with_cachetd(o, std::to_string(v), why);
}

// Reads one TOML node into the option; false with *why on a wrong type or value.
bool read_node(Config& c, const OptionInfo& o, const toml::node& n, std::string* why) {
  Access a = access(c, o);
  switch (o.kind) {
    case Kind::uint: {
      auto v = n.value_exact<int64_t>();
      if (!v) {
        *why = fmt::format("expected an integer, got {}", toml_type_name(n));
        return false;
      }
      if (!check_uint(o, *v, why)) return false;
      *a.u = *v;
      return true;
    }
    case Kind::real: {
      auto v = n.value<double>();  // an integer is fine where a real is expected
      if (!v || !std::isfinite(*v)) {
        *why = fmt::format("expected a number, got {}", toml_type_name(n));
        return false;
      }
      if (!check_with_cachetd(o, fmt::format("{}", *v), why)) return false;
      *a.r = *v;
      return true;
    }
    case Kind::text: {
      auto v = n.value_exact<std::string>();
      if (!v) {
        *why = fmt::format("expected a string, got {}", toml_type_name(n));
        return false;
      }
      if (!v->empty() && !check_with_cachetd(o, *v, why)) return false;
      *a.t = *v;
      return true;
    }
    case Kind::list: {
      const toml::array* arr = n.as_array();
      if (!arr) {
        *why = fmt::format("expected an array of strings, got {}", toml_type_name(n));
        return false;
      }
      std::vector<std::string> out;
      for (const toml::node& e : *arr) {
        auto s = e.value_exact<std::string>();
        if (!s) {
          *why = fmt::format("expected an array of strings, found a {}", toml_type_name(e));
          return false;
        }
        out.push_back(*s);
      }
      *a.l = std::move(out);
      return true;
    }
  }
  return false;
}

}  // namespace

const std::vector<OptionInfo>& options() {
  static const std::vector<OptionInfo> table = [] {
    std::vector<OptionInfo> t = {
#define CACHET_X(sec, key, kind, def, lo, hi, flag, rt, desc) \
  OptionInfo{#sec, #key, Kind::kind, lo, hi, flag, rt, desc},
        CACHET_CONTROL_OPTIONS(CACHET_X)
#undef CACHET_X
    };
    // The tunables, before dataplane.extra_args: --lease-window for lease_window; -v counts
    // verbosity.
    static std::vector<std::string> flags;
    std::vector<OptionInfo> rows;
#define CACHET_X(name, def, lo, hi, desc)                                        \
  {                                                                              \
    std::string f = std::string_view(#name) == "verbosity" ? "-v" : "--" #name;  \
    std::replace(f.begin() + 2, f.end(), '_', '-');                              \
    flags.push_back(f);                                                          \
    rows.push_back(OptionInfo{"dataplane", #name, Kind::uint, lo, hi, {}, true, desc}); \
  }
    CACHET_TUNABLES(CACHET_X)
#undef CACHET_X
    for (size_t i = 0; i < rows.size(); ++i) rows[i].flag = flags[i];
    auto at = std::find_if(t.begin(), t.end(), [](const OptionInfo& o) {
      return o.section == "dataplane" && o.key == "extra_args";
    });
    t.insert(at, rows.begin(), rows.end());
    return t;
  }();
  return table;
}

const OptionInfo* find_option(std::string_view name) {
  for (const OptionInfo& o : options())
    if (o.name() == name) return &o;
  return nullptr;
}

std::string value_toml(const Config& c, const OptionInfo& o) {
  Access a = access(const_cast<Config&>(c), o);
  switch (o.kind) {
    case Kind::uint: return std::to_string(*a.u);
    case Kind::real: return show_real(*a.r);
    case Kind::text: return toml_quote(*a.t);
    case Kind::list: {
      std::string s = "[";
      for (size_t i = 0; i < a.l->size(); ++i) s += (i ? ", " : "") + toml_quote((*a.l)[i]);
      return s + "]";
    }
  }
  return "";
}

std::string value_text(const Config& c, const OptionInfo& o) {
  Access a = access(const_cast<Config&>(c), o);
  switch (o.kind) {
    case Kind::text: return *a.t;
    case Kind::list: {
      std::string s;
      for (size_t i = 0; i < a.l->size(); ++i) s += (i ? " " : "") + (*a.l)[i];
      return s;
    }
    case Kind::real: return fmt::format("{}", *a.r);
    default: return value_toml(c, o);
  }
}

bool set_option(Config& c, const OptionInfo& o, std::string_view text, std::string* error) {
  std::string why;
  Config next = c;
  Access a = access(next, o);
  bool ok = true;
  switch (o.kind) {
    case Kind::uint: {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        why = fmt::format("'{}' is not an integer", text);
        ok = false;
      } else {
        ok = check_uint(o, v, &why);
        *a.u = v;
      }
      break;
    }
    case Kind::real: {
      double v = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        why = fmt::format("'{}' is not a number", text);
        ok = false;
      } else {
        ok = check_with_cachetd(o, std::string(text), &why);
        *a.r = v;
      }
      break;
    }
    case Kind::text:
      ok = text.empty() || check_with_cachetd(o, std::string(text), &why);
      *a.t = text;
      break;
    case Kind::list: why = "a list cannot be set here; use the config file"; ok = false; break;
  }
  if (ok && o.section == "control" && o.key == "log_level" && *a.t != "error" &&
      *a.t != "warn" && *a.t != "info" && *a.t != "debug") {
    why = fmt::format("'{}' is not a log level (error, warn, info or debug)", text);
    ok = false;
  }
  if (!ok) {
    *error = fmt::format("{}: {}", o.name(), why);
    return false;
  }
  c = std::move(next);
  return true;
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
    std::string_view sec = sec_key.str();
    const toml::table* sec_table = sec_node.as_table();
    bool known = false;
    for (const OptionInfo& o : options()) known |= o.section == sec;
    if (!known || !sec_table) {
      *error = fmt::format("{}: unknown section '{}' (sections: control, dataplane, supervisor, "
                           "upgrade, metrics, invalidate)",
                           toml_where(origin, sec_node.source()), sec);
      return false;
    }
    for (auto&& [key, node] : *sec_table) {
      std::string name = fmt::format("{}.{}", sec, key.str());
      const OptionInfo* o = find_option(name);
      if (!o) {
        *error = fmt::format("{}: unknown key '{}' (cachet-control --print-default-config "
                             "lists every key)",
                             toml_where(origin, node.source()), name);
        return false;
      }
      std::string why;
      if (!read_node(c, *o, node, &why)) {
        *error = fmt::format("{}: {}: {}", toml_where(origin, node.source()), name, why);
        return false;
      }
    }
  }
  if (!set_option(c, *find_option("control.log_level"), c.control_log_level, error)) {
    *error = fmt::format("{}: {}", origin, *error);
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
  const Config defaults;
  std::string s =
      "# cachet-control configuration: every option with its default.\n"
      "# Flags after `--` on cachet-control's command line override [dataplane].\n"
      "# Options marked (run time) can also be changed with `cachetctl config set`.\n";
  std::string_view section;
  for (const OptionInfo& o : options()) {
    if (o.section != section) {
      section = o.section;
      s += fmt::format("\n[{}]\n", section);
    }
    std::string desc(o.description);
    if (!o.flag.empty()) desc += fmt::format(" [cachetd {}]", o.flag);
    if (o.runtime) desc += " (run time)";
    s += toml_comment(desc);
    s += fmt::format("{} = {}\n", o.key, value_toml(defaults, o));
  }
  return s;
}

}  // namespace cachet::control
