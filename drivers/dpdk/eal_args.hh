// EAL argument strings (--dpdk-args) split into argv words, shared by cachetd and the load
// generator. No DPDK header: plain strings.
#pragma once

#include <string>
#include <vector>

namespace cachet::drivers::dpdk {

// Splits like a shell does for plain words and '...' or "..." quotes (no escapes). Sets
// *error on an unterminated quote.
std::vector<std::string> split_args(const std::string& s, std::string* error);

}  // namespace cachet::drivers::dpdk
