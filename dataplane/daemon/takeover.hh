// Upgrade in place between two cachetd processes. The running one listens on
// "<admin socket>.takeover"; a successor connects, asks, and receives every listening socket,
// UDP socket and open connection (SCM_RIGHTS) with its unconsumed input, then the word that
// the arena is free to attach. Clients keep their connections; none is refused.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/daemon/takeover_path.hh"
#include "drivers/uring/uring_driver.hh"

namespace cachet::dataplane::takeover {

// The running process's side: a unix listener (mode 0600) waiting for a successor.
class Listener {
 public:
  ~Listener() { close(); }
  bool open(const std::string& path, std::string* error);
  // Blocks until a successor asks (returns its connection) or `quit` is set (returns -1).
  int wait_request(const std::atomic<bool>& quit);
  // Stops listening and removes the path, so the successor can listen there.
  void close();

 private:
  int fd_ = -1;
  std::string path_;
};

// Sends the descriptors and pending bytes, then closes this process's copies of them.
bool send_handoff(int fd, drivers::Handoff& h, std::string* error);
// Tells the successor that the arena has been detached (or, with ok = false, that the
// handoff failed and why).
void send_released(int fd, bool ok, const std::string& why);

// The successor's side: connects to the running process and asks for its service. Returns the
// connection, or -1 with *error set.
int request(const std::string& path, std::string* error);
bool receive_handoff(int fd, drivers::Handoff* h, std::string* error);
bool wait_released(int fd, int timeout_ms, std::string* error);

// The running process's whole side, on a thread of its own: from start() on it waits on the
// takeover socket beside the admin socket; when a successor asks, it asks the kernel path to
// hand off at request boundaries (`handing`) and stops the other drivers (`stop_these`), so
// that every driver's run() returns. complete(), called once they all returned, sends the
// sockets and connections, lets `release` give up the arena, and tells the successor to
// attach it. Without an admin socket there is no successor to wait for.
class Successor {
 public:
  explicit Successor(drivers::UringDriver& handing) : handing_(handing) {}
  ~Successor() { join(); }
  void start(const std::string& admin_socket, std::vector<drivers::Driver*> stop_these);
  bool asked() const { return fd_.load() >= 0; }
  void complete(const std::function<void()>& release);

 private:
  void join();
  drivers::UringDriver& handing_;
  Listener listener_;
  std::atomic<bool> quit_{false};
  std::atomic<int> fd_{-1};
  std::thread waiter_;
};

}  // namespace cachet::dataplane::takeover
