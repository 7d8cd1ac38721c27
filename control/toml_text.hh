// TOML source text shared by the configs that print themselves (cachet-control's and
// cachet-invalidate's --print-default-config): quoted strings, wrapped comments, type names.
#pragma once

#include <string>
#include <string_view>

#include <toml++/toml.h>

namespace cachet::control {

// s as a TOML basic string, quotes and escapes included.
std::string toml_quote(std::string_view s);

// text as "# ..." comment lines of at most about `width` columns, each ending in '\n'.
std::string toml_comment(std::string_view text, size_t width = 96);

// The TOML type of a node for error messages ("string", "integer", "array", ...).
std::string toml_type_name(const toml::node& n);

// The whole file at path into *text; false with *error ("cannot read config file ...").
bool read_config_file(const std::string& path, std::string* text, std::string* error);

// "origin:line" of a node's source, or origin alone when the node has no position.
std::string toml_where(std::string_view origin, const toml::source_region& r);

}  // namespace cachet::control
