#pragma once
// One listening socket and the connections it accepted. Internal to the
// server.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>
#include <spdlog/logger.h>

#include <portico/config.hpp>
#include <portico/connection.hpp>
#include <portico/handler.hpp>

#include "daemon/admission.hpp"
#include "daemon/listen_socket.hpp"
#include "daemon/log_throttle.hpp"

namespace portico {

// Counts shared by every listener of one server; shared so that a listener
// still finishing connections may outlive the server. `on_connection_end`
// runs whenever a connection ends, so that a draining server notices the
// last one and paused listeners resume.
struct ServerCounters {
  std::size_t connections = 0;
  std::size_t max_connections = 0;  // [daemon] max_connections; 0 = none
  std::function<void()> on_connection_end;

  bool full() const { return max_connections != 0 && connections >= max_connections; }
};

// What a listener turned away, for the log and status lines.
struct ListenerStats {
  std::uint64_t accepted = 0;
  std::uint64_t refused_access = 0;
  std::uint64_t refused_limit = 0;
  std::uint64_t refused_per_source = 0;
  std::uint64_t refused_rate = 0;
  std::uint64_t refused_proxy_header = 0;
};

// One generation of a listener's configuration and handler. A connection
// keeps the generation it was accepted under, so after a reload it finishes
// with the handler object it started with. Single-threaded reference counts:
// every owner lives on the io_context's one thread.
struct Service : boost::intrusive_ref_counter<Service, boost::thread_unsafe_counter> {
  Service(ListenerConfig c, std::unique_ptr<Handler> h) : config(std::move(c)), handler(std::move(h)) {}
  ListenerConfig config;
  std::unique_ptr<Handler> handler;
};

// A descriptor from accept4(), closed unless taken.
class AcceptedFd {
 public:
  explicit AcceptedFd(int fd) : fd_(fd) {}
  AcceptedFd(AcceptedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  AcceptedFd& operator=(AcceptedFd&&) = delete;
  ~AcceptedFd();
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

class Listener : public boost::intrusive_ref_counter<Listener, boost::thread_unsafe_counter> {
 public:
  Listener(boost::asio::io_context& io, boost::intrusive_ptr<Service> service,
           std::shared_ptr<spdlog::logger> logger, std::shared_ptr<ServerCounters> counters);
  ~Listener();

  // Binds a new socket, or takes over `inherited_fd` from systemd. Throws
  // StartError naming the listener, the address and the OS error.
  void bind(std::optional<int> inherited_fd = std::nullopt);
  // Starts the accept coroutine.
  void start();
  // Stops accepting: the socket closes at once (a Unix socket file is
  // removed). Open connections go on.
  void stop();
  // Closes every connection still open.
  void close_connections();
  // Serves new connections with `service` (a reload); connections already
  // open finish with the generation they have.
  void update(boost::intrusive_ptr<Service> service);
  // Wakes the accept loop if it paused at a connection limit.
  void resume();

  const ListenerConfig& config() const { return service_->config; }
  // The address actually bound (the real port when 0 was asked).
  const std::string& bound_address() const { return bound_address_; }
  std::size_t active() const { return active_; }
  const ListenerStats& stats() const { return stats_; }
  bool paused() const { return paused_; }

 private:
  // The TCP_DEFER_ACCEPT time the listening socket gets; zero for none.
  std::chrono::seconds defer_accept() const;
  using ConnectionList = boost::intrusive::list<
      Connection,
      boost::intrusive::member_hook<Connection, decltype(Connection::live_hook), &Connection::live_hook>,
      boost::intrusive::constant_time_size<false>>;

  static boost::asio::awaitable<void> accept_loop(boost::intrusive_ptr<Listener> self);
  static boost::asio::awaitable<void> serve(boost::intrusive_ptr<Listener> self, boost::intrusive_ptr<Service> service,
                                            std::unique_ptr<Connection> connection,
                                            std::optional<IpBytes> source);
  static void wait_for_client(boost::intrusive_ptr<Listener> self, boost::intrusive_ptr<Service> service,
                              std::unique_ptr<Connection> connection, std::optional<IpBytes> source,
                              Duration limit);
  // Waits before the next accept when the process is out of descriptors or
  // memory, so that a full table does not turn into a busy loop.
  boost::asio::awaitable<bool> back_off(const boost::system::error_code& ec);
  // Waits while the listener (or the server) is at its connection cap in
  // "pause" mode.
  boost::asio::awaitable<void> wait_for_capacity();
  bool at_capacity() const;
  // Applies allow/deny and max_per_source to a client; on success returns
  // true and sets `source` to the slot taken (if any).
  bool admit_client(const Service& service, const Peer& peer, std::optional<IpBytes>& source);
  void refuse(std::uint64_t& counter, const Peer& peer, std::string_view why);

  boost::asio::io_context& io_;
  boost::intrusive_ptr<Service> service_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<ServerCounters> counters_;
  Acceptor acceptor_;
  boost::asio::generic::stream_protocol protocol_{AF_UNSPEC, 0};  // of the accepted sockets
  boost::asio::steady_timer wait_timer_;  // accept back-off and pause
  std::string bound_address_;
  ConnectionList live_;
  std::size_t active_ = 0;
  SourceCounter sources_;
  TokenBucket rate_;
  ListenerStats stats_;
  LogThrottle accept_error_log_;
  LogThrottle refusal_log_;
  LogThrottle timeout_log_{std::chrono::seconds(1)};
  bool paused_ = false;
  bool stopped_ = false;
  bool owns_unix_path_ = false;
};

}  // namespace portico
