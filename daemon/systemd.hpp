#pragma once
// What porticod tells systemd (Type=notify) and takes from it (socket
// activation). Every call is a no-op when not started by systemd.

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace portico {

// Messages go out on a non-blocking datagram socket of its own: a reader
// that is behind (systemd busy, a full queue) must never stall serving.
// What cannot be sent at once waits (at most 16 messages, the oldest
// dropped first) and is retried every 50 ms, in order.
class SystemdNotifier {
 public:
  // `status` is asked for a STATUS= line whenever one is sent.
  SystemdNotifier(boost::asio::io_context& io, std::function<std::string()> status);
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const { return enabled_; }
  // READY=1 with the current status; starts the watchdog pings when systemd
  // asked for them (WATCHDOG_USEC) and periodic STATUS= updates.
  void ready();
  // RELOADING=1 with MONOTONIC_USEC, as systemd's reload protocol asks.
  void reloading();
  void stopping();
  void status();

 private:
  void send(std::string message);
  // True when sent, or failed for good; false when the reader is behind.
  bool try_send(const std::string& message);
  void flush();
  void retry_later();

  void tick();

  boost::asio::steady_timer timer_;
  boost::asio::steady_timer retry_;
  int fd_ = -1;
  sockaddr_un address_{};
  socklen_t address_size_ = 0;
  std::deque<std::string> pending_;
  bool retrying_ = false;
  std::function<std::string()> status_;
  std::chrono::microseconds watchdog_{0};
  std::chrono::steady_clock::time_point next_status_{};
  bool enabled_ = false;
  bool stopped_ = false;
};

// Listening sockets passed by systemd (LISTEN_FDS/LISTEN_PID), marked
// close-on-exec; empty when none. The environment variables are unset so
// that child processes do not see them.
std::vector<int> inherited_listen_fds();

}  // namespace portico
