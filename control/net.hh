// Small socket helpers for cachet-control and cachetctl: unix stream sockets (listen with mode
// 0600, connect), a loopback TCP listener, and deadline-bounded reads and writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cachet::control {

// Binds and listens on a unix socket at path (replacing a stale socket file there; refusing
// when another process answers on it), mode 0600. Returns the fd (non-blocking, close-on-exec)
// or -1 with *error.
int listen_unix(const std::string& path, std::string* error);

// Connects to a unix socket, waiting at most timeout_ms. -1 with *error (errno kept).
int connect_unix(const std::string& path, int timeout_ms, std::string* error);

// Connects to host:port over TCP, waiting at most timeout_ms.
int connect_tcp(const std::string& host, uint16_t port, int timeout_ms, std::string* error);

// Listens on 127.0.0.1:port (non-blocking). -1 with *error.
int listen_loopback_tcp(uint16_t port, std::string* error);

// Writes all of data before the deadline (a blocking or non-blocking fd).
bool write_all(int fd, std::string_view data, int64_t deadline_ms, std::string* error);

// Reads into *buf until it contains `term` (returns its end offset) or the peer closes
// (returns buf->size() when allow_eof) or the deadline passes (-1 with *error).
long read_until(int fd, std::string* buf, std::string_view term, int64_t deadline_ms,
                bool allow_eof, std::string* error);

// Makes the directory (and parents) if missing, mode 0700 for those it creates.
bool make_dirs(const std::string& dir, std::string* error);

}  // namespace cachet::control
