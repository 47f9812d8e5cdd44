#pragma once
// What porticod tells systemd (Type=notify) and takes from it (socket
// activation). Every call is a no-op when not started by systemd.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace portico {

class SystemdNotifier {
 public:
  // `status` is asked for a STATUS= line whenever one is sent.
  SystemdNotifier(boost::asio::io_context& io, std::function<std::string()> status);

  bool enabled() const { return enabled_; }
  // READY=1 with the current status; starts the watchdog pings when systemd
  // asked for them (WATCHDOG_USEC) and periodic STATUS= updates.
  void ready();
  // RELOADING=1 with MONOTONIC_USEC, as systemd's reload protocol asks.
  void reloading();
  void stopping();
  void status();

 private:
  void send(const std::string& message);
  void tick();

  boost::asio::steady_timer timer_;
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
