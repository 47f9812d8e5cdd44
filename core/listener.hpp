#pragma once
// One listening socket and the connections it accepted. Internal to the
// server.
//
// A new connection passes named stages, each of which may refuse it:
//
//   accept     accept4() in batches; waits while at a connection cap
//   admit      rate, capacity, then (without a PROXY header) allow/deny and
//              max_per_source; a refusal closes the socket before anything
//              is allocated for it
//   introduce  PROXY protocol listeners only: read the header, then apply
//              allow/deny and max_per_source to the client it names
//   hold       TLS listeners and handlers whose client speaks first: no
//              coroutine until the client's first bytes arrive
//   secure     TLS listeners only: the handshake, within tls_handshake_timeout
//   serve      the handler's coroutine; then the connection is closed and
//              accounted for

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>
#include <spdlog/logger.h>

#include <portico/config.hpp>
#include <portico/events.hpp>
#include <portico/log_throttle.hpp>
#include <portico/server.hpp>

#include "core/admission.hpp"
#include "core/listen_socket.hpp"
#include "core/server_connection.hpp"
#include "core/service.hpp"

namespace portico {

// Counts shared by every listener of one server; shared so that a listener
// still finishing connections may outlive the server. `on_change` runs
// whenever a connection ends or a listener finished draining its queue, so
// that a stopping server notices the end and paused listeners resume.
struct ServerCounters {
  std::size_t connections = 0;
  std::size_t max_connections = 0;  // [daemon] max_connections; 0 = none
  std::size_t draining_listeners = 0;
  std::function<void()> on_change;
  const Server* server = nullptr;  // null once the server is gone
  std::shared_ptr<ConnectionObserver> observer;

  bool full() const { return max_connections != 0 && connections >= max_connections; }
};

class Listener : public boost::intrusive_ref_counter<Listener, boost::thread_unsafe_counter> {
 public:
  Listener(boost::asio::io_context& io, ServicePtr service, std::shared_ptr<spdlog::logger> logger,
           std::shared_ptr<ServerCounters> counters);
  ~Listener();

  // Binds a new socket, or takes over `inherited_fd` from systemd.
  Result<void> bind(std::optional<int> inherited_fd = std::nullopt);
  // Starts the accept coroutine.
  void start();
  // Stops accepting and closes the socket at once (a Unix socket file is
  // removed): what the kernel still holds is refused. Open connections go
  // on.
  void stop();
  // Stops accepting new clients but first takes those the kernel already
  // holds: the deferral is turned off and the queue accepted until it is
  // empty and no deferred client can still arrive, for at most `limit`;
  // then stop(). Counted in ServerCounters::draining_listeners meanwhile.
  void stop_gracefully(Duration limit);
  // Closes every connection still open.
  void close_connections();
  // A stop leaves the Unix socket file in place: the socket lives on in
  // another process.
  void keep_socket_file() { owns_unix_path_ = false; }
  int fd() { return acceptor_.native_handle(); }
  // Serves new connections with `service` (a reload); connections already
  // open finish with the generation they have.
  Result<void> update(ServicePtr service);
  // Wakes the accept loop if it paused at a connection limit.
  void resume();

  // Stop and resume accepting, the socket kept (porticoctl disable/enable).
  void disable();
  void enable();
  // disable(), then `done(cut)` once every connection ended (cut = 0) or
  // when `timeout` passed, after closing the `cut` left.
  void drain(Duration timeout, std::function<void(std::size_t)> done);

  const ListenerConfig& config() const { return service_->config; }
  const Handler& handler() const { return *service_->handler; }
  // The generation new connections get.
  const ServicePtr& service() const { return service_; }
  // The address actually bound (the real port when 0 was asked).
  const std::string& bound_address() const { return bound_address_; }
  std::size_t active() const { return active_; }
  // What it counted; bytes of open connections are in open_bytes().
  const ListenerCounters& counters() const { return counters_; }
  std::pair<std::uint64_t, std::uint64_t> open_bytes() const;
  Server::ListenerState state() const;
  bool accepting() const { return !stopped_; }
  template <typename F>
  void for_each_connection(F&& f) const {
    for (const auto& connection : live_) f(connection);
  }

 private:
  using ConnectionPtr = std::unique_ptr<ServerConnection>;
  using ConnectionList = boost::intrusive::list<
      ServerConnection,
      boost::intrusive::member_hook<ServerConnection, decltype(ServerConnection::live_hook),
                                    &ServerConnection::live_hook>,
      boost::intrusive::constant_time_size<false>>;

  // The TCP_DEFER_ACCEPT time the listening socket gets; zero for none.
  std::chrono::seconds defer_accept() const;

  // The stages, in order.
  static boost::asio::awaitable<void> accept_loop(boost::intrusive_ptr<Listener> self);
  void admit(int fd, const Endpoint& peer);
  static boost::asio::awaitable<void> introduce(boost::intrusive_ptr<Listener> self, ConnectionPtr connection);
  static void hold(boost::intrusive_ptr<Listener> self, ConnectionPtr connection, Duration limit);
  boost::asio::awaitable<bool> secure(ServerConnection& connection);
  static boost::asio::awaitable<void> serve(boost::intrusive_ptr<Listener> self, ConnectionPtr connection);
  // Starts the stage after admission: hold or serve.
  void begin(ConnectionPtr connection);
  // Accounts for a connection that ends, served or not.
  void finish(ServerConnection& connection);

  // Waits before the next accept when the process is out of descriptors or
  // memory, so that a full table does not turn into a busy loop.
  boost::asio::awaitable<bool> back_off(const boost::system::error_code& ec);
  // Waits while the listener is disabled, or it (or the server) is at its
  // connection cap in "pause" mode.
  boost::asio::awaitable<void> wait_until_accepting();
  // Waits for the next client while the backlog is empty; false when the
  // listener stopped meanwhile.
  boost::asio::awaitable<bool> wait_for_client();
  bool at_capacity() const;
  // While draining: true once no deferred client can still arrive and the
  // queue is empty, or at the drain's limit.
  bool drain_over();
  // Applies allow/deny and max_per_source to a client; on success returns
  // true and sets `source` to the slot taken (if any).
  bool admit_client(const ListenerConfig& config, const Endpoint& peer, std::optional<IpBytes>& source,
                    const Endpoint* socket_peer = nullptr);
  void refuse(Refusal reason, const Endpoint& peer, std::string_view why, const Endpoint* socket_peer = nullptr);
  void log_timeout(ServerConnection& connection);
  void report_end(ServerConnection& connection, std::chrono::microseconds duration);
  void drained(std::size_t cut);

  boost::asio::io_context& io_;
  ServicePtr service_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<ServerCounters> shared_;
  Acceptor acceptor_;
  int family_ = AF_UNSPEC;  // of the accepted sockets
  boost::asio::steady_timer wait_timer_;  // accept back-off, pause, end of a drain
  std::string bound_address_;
  // The local address of every accepted socket, when the listener is bound
  // to one (not a wildcard).
  std::optional<Endpoint> accepted_local_;
  ConnectionList live_;
  std::size_t active_ = 0;
  SourceCounter sources_;
  TokenBucket rate_;
  ListenerCounters counters_;
  LogThrottle accept_error_log_;
  LogThrottle refusal_log_;
  std::uint64_t refusals_unrecorded_ = 0;  // held back from the observer since its last refusal record
  LogThrottle timeout_log_;
  std::optional<std::chrono::steady_clock::time_point> drain_until_;  // set while draining the queue
  std::chrono::steady_clock::time_point drain_limit_{};  // when a drain ends whatever is still queued
  // A drain by porticoctl: its timer and whom to tell.
  std::unique_ptr<boost::asio::steady_timer> drain_timer_;
  std::function<void(std::size_t)> drain_done_;
  bool disabled_ = false;
  bool paused_ = false;
  bool stopped_ = false;
  bool owns_unix_path_ = false;
};

}  // namespace portico
