// memcached 1.6.18's reply lines (and mcrouter's lease replies), each spelled once, for every
// parser and executor of the text and meta protocols.
#pragma once

#include <string_view>

namespace cachet::dataplane::reply {

inline constexpr std::string_view kStored = "STORED\r\n";
inline constexpr std::string_view kStaleStored = "STALE_STORED\r\n";  // lease-set (mcrouter)
inline constexpr std::string_view kNotStored = "NOT_STORED\r\n";
inline constexpr std::string_view kExists = "EXISTS\r\n";
inline constexpr std::string_view kNotFound = "NOT_FOUND\r\n";
inline constexpr std::string_view kDeleted = "DELETED\r\n";
inline constexpr std::string_view kTouched = "TOUCHED\r\n";
inline constexpr std::string_view kOk = "OK\r\n";
inline constexpr std::string_view kEnd = "END\r\n";
inline constexpr std::string_view kReset = "RESET\r\n";
inline constexpr std::string_view kMn = "MN\r\n";
inline constexpr std::string_view kEn = "EN\r\n";
inline constexpr std::string_view kCrlf = "\r\n";
inline constexpr std::string_view kError = "ERROR\r\n";

inline constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache\r\n";
inline constexpr std::string_view kNoMemory = "SERVER_ERROR out of memory storing object\r\n";
inline constexpr std::string_view kDeltaNoMemory = "SERVER_ERROR out of memory\r\n";
inline constexpr std::string_view kShutdownOff = "ERROR: shutdown not enabled\r\n";

inline constexpr std::string_view kBadChunk = "CLIENT_ERROR bad data chunk\r\n";
inline constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format\r\n";
inline constexpr std::string_view kBadLine = "CLIENT_ERROR bad command line\r\n";
inline constexpr std::string_view kBadExptime = "CLIENT_ERROR invalid exptime argument\r\n";
inline constexpr std::string_view kBadDeltaArg = "CLIENT_ERROR invalid numeric delta argument\r\n";
inline constexpr std::string_view kNonNumeric =
    "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
inline constexpr std::string_view kDeleteUsage =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
inline constexpr std::string_view kBadLeaseToken = "CLIENT_ERROR invalid lease token\r\n";

// Meta protocol (proto_text.c's meta handlers).
inline constexpr std::string_view kBadToken = "CLIENT_ERROR bad token in command line format\r\n";
inline constexpr std::string_view kFlagsTooLongMg = "CLIENT_ERROR options flags are too long\r\n";
inline constexpr std::string_view kFlagsTooLong = "CLIENT_ERROR options flags too long\r\n";
inline constexpr std::string_view kInvalidOrDup = "CLIENT_ERROR invalid or duplicate flag\r\n";
inline constexpr std::string_view kDuplicateFlag = "CLIENT_ERROR duplicate flag\r\n";
inline constexpr std::string_view kInvalidFlag = "CLIENT_ERROR invalid flag\r\n";
inline constexpr std::string_view kLongOpaque = "CLIENT_ERROR opaque token too long\r\n";
inline constexpr std::string_view kBadInitial = "CLIENT_ERROR invalid numeric initial value\r\n";
inline constexpr std::string_view kBadDelta = "CLIENT_ERROR invalid numeric delta value\r\n";
inline constexpr std::string_view kBadKeyDecode = "CLIENT_ERROR error decoding key\r\n";
inline constexpr std::string_view kBadMLength = "CLIENT_ERROR incorrect length for M token\r\n";
inline constexpr std::string_view kBadMsMode = "CLIENT_ERROR invalid mode for ms M token\r\n";
inline constexpr std::string_view kBadMaMode = "CLIENT_ERROR invalid mode for ma M token\r\n";

}  // namespace cachet::dataplane::reply
