// Key templates ("user:{id}", "profile:{id}:v2") that turn a row's column values into memcache
// keys, and the rule every key must pass before it is sent (memcached's text protocol).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cachet::invalidate {

// memcached's limit on key length in the text protocol.
inline constexpr size_t kMaxKeyLength = 250;

// Why key cannot be sent as a memcache key (empty, longer than 250 bytes, or holding a space
// or a control character), or nullopt when it can.
std::optional<std::string_view> key_problem(std::string_view key);

// A parsed template: literal text and {field} references; "{{" and "}}" stand for braces.
class KeyTemplate {
 public:
  // Parses text; false with *error saying what is wrong and where (unclosed brace, empty
  // field, stray '}').
  static bool parse(std::string_view text, KeyTemplate* out, std::string* error);

  const std::string& text() const { return text_; }
  // The distinct field names, in order of first use; expand() takes values in this order.
  const std::vector<std::string>& fields() const { return fields_; }

  // The key for values[i] of fields()[i]; nullopt when a value is missing (nullptr: SQL NULL
  // or not in the row).
  std::optional<std::string> expand(std::span<const std::string_view* const> values) const;

 private:
  struct Piece {
    std::string literal;
    int field = -1;  // index into fields_, or -1 for a literal
  };
  std::string text_;
  std::vector<Piece> pieces_;
  std::vector<std::string> fields_;
};

}  // namespace cachet::invalidate
