// What a well-formed memcached reply looks like, for the fuzz targets: the text protocol's
// (classic and meta) as one table of reply shapes, and the binary protocol's response frames.
// A new reply (the lease dialect's LVALUE and STALE_STORED, say) is one row of kTextReplies.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace cachet::fuzz {

// One kind of reply line: its first token and what may follow it.
struct ReplyShape {
  std::string_view head;  // the first token; "#" = the line is one decimal number (incr/decr)
  // The arguments after head, space separated, each one of:
  //   key    a memcached key: 1 to 250 bytes, no space
  //   u32    a decimal that fits 32 bits       u64   a decimal that fits 64 bits
  //   word   one token                          text  the rest of the line (at least a byte)
  //   mflags meta return flags: any number of tokens, each a letter and its value
  // with '?' appended: the argument may be missing (only the last ones).
  std::string_view args;
  int data_arg = -1;  // index of the argument that gives a data block's length, -1 = none
};

// Every line the text protocol may send (memcached 1.6.18's words).
std::span<const ReplyShape> text_replies();

// "" when `out` is a whole number of well-formed text-protocol replies, else what is wrong
// (with the offending bytes shown).
std::string check_text_replies(std::string_view out);

// "" when `out` is a whole number of well-formed binary-protocol responses: response magic,
// data type 0, a status memcached sends, lengths that add up, and an error's body being the
// status's message.
std::string check_binary_replies(std::string_view out);

}  // namespace cachet::fuzz
