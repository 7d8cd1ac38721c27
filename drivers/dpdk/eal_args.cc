// Splitting of EAL argument strings.
#include "drivers/dpdk/eal_args.hh"

namespace cachet::drivers::dpdk {

std::vector<std::string> split_args(const std::string& s, std::string* error) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char c : s) {
    if (quote) {
      if (c == quote) quote = 0; else cur += c;
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) {
    *error = "--dpdk-args: unterminated quote";
    return {};
  }
  if (in_word) out.push_back(std::move(cur));
  return out;
}

}  // namespace cachet::drivers::dpdk
