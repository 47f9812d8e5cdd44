#pragma once
// One accepted client connection, as a handler sees it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list_hook.hpp>
#include <boost/system/error_code.hpp>
#include <fmt/format.h>
#include <spdlog/logger.h>

#include <portico/duration.hpp>

namespace portico {

// The client as the connection knows it: an IP address and port, or a Unix
// socket peer (which has neither).
struct Peer {
  boost::asio::ip::address ip;
  std::uint16_t port = 0;
  bool is_unix = false;

  std::string to_string() const;  // "127.0.0.1:5555", "[::1]:5555", "unix"
};

// The outcome of one I/O step. `ec` is empty on success, `eof` when the
// client closed, `timed_out` when a deadline passed, or what the OS said.
struct IoResult {
  boost::system::error_code ec;
  std::size_t bytes = 0;

  bool ok() const { return !ec; }
  bool timed_out() const;
};

// Owned by the server's per-connection coroutine, which outlives the
// handler's serve() call; handlers receive it by reference. Every member runs
// on the io_context's thread only.
//
// The I/O helpers apply the listener's timeouts and an optional timeout of
// their own (zero = none), and never throw for network errors: a reset or an
// EOF is an ordinary outcome of a connection.
class Connection {
 public:
  using socket_type = boost::asio::generic::stream_protocol::socket;
  using clock = std::chrono::steady_clock;

  Connection(socket_type socket, Peer peer, std::string_view listener_name, spdlog::logger& logger);
  // Takes `accepted_fd`, a connected socket accepted with SOCK_NONBLOCK,
  // without registering it with the reactor: read_some(), write() and
  // close() work on the descriptor directly, and the registration (an
  // epoll_ctl() each way) happens only when the connection first has to
  // wait, or when socket() is called. A client served without ever waiting
  // (the usual greeting) costs no reactor work at all.
  Connection(const socket_type::executor_type& executor, const socket_type::protocol_type& protocol,
             int accepted_fd, Peer peer, std::string_view listener_name, spdlog::logger& logger);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // The socket, registered with the reactor (on the first call, for a
  // connection built from a descriptor). When that registration fails the
  // error is logged and the socket is closed: I/O on it then fails.
  socket_type& socket() {
    if (!exposed_) expose_socket();
    return socket_;
  }
  const Peer& peer() const { return peer_; }
  std::string_view listener_name() const { return listener_name_; }
  // When the connection was accepted.
  clock::time_point accepted_at() const { return accepted_at_; }
  // False once close() ran (a shutdown, a timeout, the server's cleanup).
  bool is_open() const { return unregistered_fd_ >= 0 || socket_.is_open(); }

  // Reads what is available, at most buffer.size() bytes (>= 1 on success).
  // The buffer is written only while the call runs, not while it waits, so
  // one buffer may serve many connections.
  boost::asio::awaitable<IoResult> read_some(boost::asio::mutable_buffer buffer, Duration timeout = {});
  // Like read_some(), for a buffer the connection owns: the reactor reads
  // into it when data arrives, which spares a system call per wait (Asio
  // re-arms the descriptor for every wait for readiness). The buffer must
  // stay valid, and unused by anything else, until the call returns.
  boost::asio::awaitable<IoResult> receive(boost::asio::mutable_buffer buffer, Duration timeout = {});
  // Writes the whole buffer.
  boost::asio::awaitable<IoResult> write(boost::asio::const_buffer buffer, Duration timeout = {});
  // Waits until a read would not block, without holding a buffer meanwhile.
  boost::asio::awaitable<IoResult> wait_readable(Duration timeout = {});

  // Closes the socket; later I/O fails with bad_descriptor. Runs the
  // on_close callback, if any, once.
  void close();

  // Called when the connection is closed from outside the handler (server
  // shutdown, a timeout, a reload's drain), so that a handler waiting on
  // something other than the client socket (an upstream, a child process)
  // can end that wait too. One callback; setting another replaces it. It is
  // dropped when serve() returns.
  void on_close(std::function<void()> callback) { on_close_ = std::move(callback); }

  // Timeouts that apply to every I/O step of this connection: `idle` since
  // the last byte moved (zero = none), and a deadline for the whole session.
  void set_idle_timeout(Duration idle) { idle_timeout_ = idle; }
  void set_session_deadline(clock::time_point deadline) { session_deadline_ = deadline; }
  Duration idle_timeout() const { return idle_timeout_; }

  // Which deadline closed the connection, if one did: a timeout given to an
  // I/O call, the idle timeout or the session deadline.
  enum class Deadline : std::uint8_t { none, call, idle, session };
  Deadline expired() const { return expired_; }

  // The server replaces the peer with the client a PROXY header names.
  void set_peer(const Peer& peer) { peer_ = peer; }
  clock::time_point session_deadline() const { return session_deadline_; }

  // Logging with the listener name and peer in front of every line. Nothing
  // is formatted when `level` is off.
  bool should_log(spdlog::level::level_enum level) const { return logger_.should_log(level); }
  template <typename... Args>
  void log(spdlog::level::level_enum level, fmt::format_string<Args...> format, Args&&... args) {
    if (!logger_.should_log(level)) return;
    write_log(level, fmt::vformat(format, fmt::make_format_args(args...)));
  }

  // Server bookkeeping: links every live connection of a listener so that a
  // shutdown can close them.
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> live_hook;

  // Waits until no timer completion refers to this connection any more; the
  // server awaits it before destroying the connection.
  boost::asio::awaitable<void> quiesce();

 private:
  friend class Listener;  // waits for a client's first bytes before the handler runs

  void write_log(spdlog::level::level_enum level, std::string_view text);
  // The socket for the connection's own waits: registered, and, as long as
  // no handler asked for socket(), known to be the descriptor's only copy.
  socket_type& registered_socket() {
    if (unregistered_fd_ >= 0) register_socket();
    return socket_;
  }
  void register_socket();
  void expose_socket();
  // True when a read would not block: the client sent bytes, closed, or the
  // socket failed. Looks without taking anything (MSG_PEEK), on a connection
  // not registered yet; false for a registered one.
  bool client_spoke();
  // One non-blocking system call on the socket, registered or not.
  std::size_t try_read(boost::asio::mutable_buffer buffer, boost::system::error_code& ec);
  std::size_t try_write(boost::asio::const_buffer buffer, boost::system::error_code& ec);
  // Starts the deadline for one I/O step; returns false when none applies.
  bool arm(Duration timeout);
  void disarm();
  IoResult finish(boost::system::error_code ec, std::size_t bytes);

  socket_type socket_;
  int unregistered_fd_ = -1;  // the descriptor until it is registered
  socket_type::protocol_type protocol_;
  boost::asio::steady_timer timer_;
  Peer peer_;
  std::string_view listener_name_;
  spdlog::logger& logger_;
  clock::time_point accepted_at_ = clock::now();
  std::function<void()> on_close_;
  Duration idle_timeout_{0};
  clock::time_point session_deadline_ = clock::time_point::max();
  std::uint32_t timer_generation_ = 0;
  std::uint16_t timer_waits_ = 0;
  Deadline armed_for_ = Deadline::none;
  Deadline expired_ = Deadline::none;
  bool timed_out_ = false;
  bool exposed_ = false;  // socket() was called: the descriptor may be shared
};

}  // namespace portico

// Peers format as Peer::to_string() does, so that a log call whose level is
// off does not build the string: `conn.log(debug, "from {}", conn.peer())`.
template <>
struct fmt::formatter<portico::Peer> : fmt::formatter<std::string_view> {
  auto format(const portico::Peer& peer, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(peer.to_string(), ctx);
  }
};
