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

#include <portico/server.hpp>

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
  // asked for them (WATCHDOG_USEC) and periodic STATUS= updates. After a
  // binary upgrade, the new process also says it is the service's main
  // process now (MAINPID=).
  void ready(bool new_main_process = false);
  // RELOADING=1 with MONOTONIC_USEC, as systemd's reload protocol asks.
  void reloading();
  void stopping();
  void status();

  // Keeps the file descriptor store (FDSTORE=1, FileDescriptorStoreMax= in
  // the unit) in step with `sockets`: each listening socket not stored yet
  // is sent under its name, and stored ones no longer listed are removed
  // (FDSTOREREMOVE=1), so that a restart finds exactly the listeners'
  // sockets, open all along.
  void store_sockets(const std::vector<Server::ListeningSocket>& sockets);
  // Removes stored sockets by name (ones the new configuration has no use
  // for).
  void forget_sockets(const std::vector<std::string>& names);
 private:
  struct Message {
    std::string text;
    int fd = -1;  // a descriptor to pass along (SCM_RIGHTS), owned until sent
  };
  void send(std::string message, int fd = -1);
  // True when sent, or failed for good; false when the reader is behind.
  bool try_send(const Message& message);
  void flush();
  void retry_later();

  void tick();

  boost::asio::steady_timer timer_;
  boost::asio::steady_timer retry_;
  int fd_ = -1;
  sockaddr_un address_{};
  socklen_t address_size_ = 0;
  std::deque<Message> pending_;
  std::vector<std::string> stored_;  // names of the sockets in the store
  bool retrying_ = false;
  std::function<std::string()> status_;
  std::chrono::microseconds watchdog_{0};
  std::chrono::steady_clock::time_point next_status_{};
  bool enabled_ = false;
  bool stopped_ = false;
};

// Listening sockets passed in (LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES: by
// systemd's socket activation or file descriptor store, or by the porticod
// this one upgrades), marked close-on-exec; empty when none. The
// environment variables are unset so that child processes do not see them.
std::vector<Server::InheritedSocket> inherited_listen_sockets();

}  // namespace portico
