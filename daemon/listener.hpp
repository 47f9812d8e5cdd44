#pragma once
// One listening socket and the connections it accepted. Internal to the
// server.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>
#include <spdlog/logger.h>

#include <portico/config.hpp>
#include <portico/connection.hpp>
#include <portico/handler.hpp>

#include "daemon/log_throttle.hpp"

namespace portico {

// Counts shared by every listener of one server; shared so that a listener
// still finishing connections may outlive the server. `on_connection_end`
// runs whenever a connection ends, so that a draining server notices the
// last one.
struct ServerCounters {
  std::size_t connections = 0;
  std::function<void()> on_connection_end;
};

// Single-threaded reference counts: every owner lives on the io_context's
// one thread, so the count needs no atomics.
class Listener : public boost::intrusive_ref_counter<Listener, boost::thread_unsafe_counter> {
 public:
  using acceptor_type = boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol>;

  Listener(boost::asio::io_context& io, ListenerConfig config, std::unique_ptr<Handler> handler,
           std::shared_ptr<spdlog::logger> logger, std::shared_ptr<ServerCounters> counters);
  ~Listener();

  // Opens, binds and listens. Throws StartError naming the listener, the
  // address and the OS error.
  void bind();
  // Starts the accept coroutine.
  void start();
  // Stops accepting; the socket closes at once.
  void stop();
  // Closes every connection still open.
  void close_connections();

  const ListenerConfig& config() const { return config_; }
  // The address actually bound (the real port when 0 was asked).
  const std::string& bound_address() const { return bound_address_; }
  std::size_t active() const { return active_; }

 private:
  using ConnectionList = boost::intrusive::list<
      Connection,
      boost::intrusive::member_hook<Connection, decltype(Connection::live_hook), &Connection::live_hook>,
      boost::intrusive::constant_time_size<false>>;

  static boost::asio::awaitable<void> accept_loop(boost::intrusive_ptr<Listener> self);
  static boost::asio::awaitable<void> serve(boost::intrusive_ptr<Listener> self, Connection::socket_type socket,
                                            Peer peer);
  // Waits before the next accept when the process is out of descriptors or
  // memory, so that a full table does not turn into a busy loop.
  boost::asio::awaitable<bool> back_off(const boost::system::error_code& ec);

  boost::asio::io_context& io_;
  ListenerConfig config_;
  std::unique_ptr<Handler> handler_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<ServerCounters> counters_;
  acceptor_type acceptor_;
  boost::asio::steady_timer backoff_timer_;
  std::string bound_address_;
  ConnectionList live_;
  std::size_t active_ = 0;
  LogThrottle accept_error_log_;
  bool stopped_ = false;
};

}  // namespace portico
