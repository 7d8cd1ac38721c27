// Key templates: a small parser ({field}, {{, }}) and expansion; keys are checked separately.
#include "control/invalidate/key_template.hh"

#include <algorithm>

#include <fmt/format.h>

namespace cachet::invalidate {

std::optional<std::string_view> key_problem(std::string_view key) {
  if (key.empty()) return "empty";
  if (key.size() > kMaxKeyLength) return "longer than 250 bytes";
  for (unsigned char c : key)
    if (c <= ' ' || c == 0x7f) return "contains a space or a control character";
  return std::nullopt;
}

bool KeyTemplate::parse(std::string_view text, KeyTemplate* out, std::string* error) {
  KeyTemplate t;
  t.text_ = std::string(text);
  std::string literal;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') {
        literal.push_back('}');
        ++i;
        continue;
      }
      *error = fmt::format("key template '{}': '}}' at column {} closes nothing (write '}}}}' "
                           "for a brace)", text, i + 1);
      return false;
    }
    if (c != '{') {
      literal.push_back(c);
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      literal.push_back('{');
      ++i;
      continue;
    }
    const size_t close = text.find_first_of("{}", i + 1);
    if (close == std::string_view::npos || text[close] != '}') {
      *error = fmt::format("key template '{}': the '{{' at column {} is not closed", text, i + 1);
      return false;
    }
    const std::string_view name = text.substr(i + 1, close - i - 1);
    if (name.empty()) {
      *error = fmt::format("key template '{}': empty field '{{}}' at column {}", text, i + 1);
      return false;
    }
    if (!literal.empty()) t.pieces_.push_back(Piece{std::move(literal), -1});
    literal.clear();
    auto it = std::find(t.fields_.begin(), t.fields_.end(), name);
    const int index = static_cast<int>(it - t.fields_.begin());
    if (it == t.fields_.end()) t.fields_.emplace_back(name);
    t.pieces_.push_back(Piece{{}, index});
    i = close;
  }
  if (!literal.empty()) t.pieces_.push_back(Piece{std::move(literal), -1});
  *out = std::move(t);
  return true;
}

std::optional<std::string> KeyTemplate::expand(
    std::span<const std::string_view* const> values) const {
  std::string key;
  for (const Piece& p : pieces_) {
    if (p.field < 0) {
      key += p.literal;
      continue;
    }
    const std::string_view* v = static_cast<size_t>(p.field) < values.size() ? values[p.field]
                                                                              : nullptr;
    if (!v) return std::nullopt;
    key += *v;
  }
  return key;
}

}  // namespace cachet::invalidate
