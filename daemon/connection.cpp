#include <portico/connection.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/version.hpp>
#include <fmt/format.h>

namespace portico {

namespace asio = boost::asio;
using boost::system::error_code;

std::string Peer::to_string() const {
  if (is_unix) return "unix";
  if (ip.is_v6()) return fmt::format("[{}]:{}", ip.to_string(), port);
  return fmt::format("{}:{}", ip.to_string(), port);
}

bool IoResult::timed_out() const { return ec == asio::error::timed_out; }

Connection::Connection(socket_type socket, Peer peer, std::string_view listener_name, spdlog::logger& logger)
    : socket_(std::move(socket)),
      protocol_(AF_UNSPEC, 0),
      timer_(socket_.get_executor()),
      peer_(std::move(peer)),
      listener_name_(listener_name),
      logger_(logger) {}

Connection::Connection(const socket_type::executor_type& executor, const socket_type::protocol_type& protocol,
                       int accepted_fd, Peer peer, std::string_view listener_name, spdlog::logger& logger)
    : socket_(executor),
      unregistered_fd_(accepted_fd),
      protocol_(protocol),
      timer_(executor),
      peer_(std::move(peer)),
      listener_name_(listener_name),
      logger_(logger) {}

Connection::~Connection() {
  if (unregistered_fd_ >= 0) ::close(unregistered_fd_);
}

namespace {

// Asio keeps two facts about a socket in its implementation's state bits:
// whether it is non-blocking, set only with an ioctl(FIONBIO), and whether
// the descriptor may have copies (any socket given by descriptor), which
// makes close() deregister it with an epoll_ctl(EPOLL_CTL_DEL) first. An
// accepted descriptor is non-blocking already (SOCK_NONBLOCK) and, until a
// handler takes the socket, has no copy, so closing it removes it from epoll
// by itself. The bits are set here directly, through basic_socket's
// protected member; only for the epoll reactor of the Asio version built
// with. Anything else takes the ioctl and keeps Asio's cautious close.
#if BOOST_ASIO_VERSION == 102600 && defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
struct SocketState : Connection::socket_type {
  static auto& bits(Connection::socket_type& socket) {
    return (socket.*(&SocketState::impl_)).get_implementation().state_;
  }
};

void adopt_accepted(Connection::socket_type& socket, error_code&) {
  auto& bits = SocketState::bits(socket);
  bits |= asio::detail::socket_ops::user_set_non_blocking | asio::detail::socket_ops::internal_non_blocking;
  bits &= ~asio::detail::socket_ops::possible_dup;
}

void may_be_copied(Connection::socket_type& socket) {
  if (socket.is_open()) SocketState::bits(socket) |= asio::detail::socket_ops::possible_dup;
}
#else
void adopt_accepted(Connection::socket_type& socket, error_code& ec) { socket.non_blocking(true, ec); }
void may_be_copied(Connection::socket_type&) {}
#endif

}  // namespace

void Connection::register_socket() {
  const int fd = std::exchange(unregistered_fd_, -1);
  error_code ec;
  socket_.assign(protocol_, fd, ec);
  if (!ec) adopt_accepted(socket_, ec);
  if (ec) {
    // Out of epoll watches or memory: this connection cannot wait for
    // anything, so it ends here.
    error_code ignored;
    if (socket_.is_open()) {
      socket_.close(ignored);
    } else {
      ::close(fd);
    }
    logger_.error("[{} {}] cannot register the connection with the event loop: {}; closing it", listener_name_,
                  peer_.to_string(), ec.message());
  }
}

void Connection::expose_socket() {
  exposed_ = true;
  registered_socket();
  // A handler may hand the descriptor on (exec gives it to a child): from
  // now on close() must take it out of epoll explicitly.
  may_be_copied(socket_);
}

bool Connection::client_spoke() {
  if (unregistered_fd_ < 0) return false;
  char byte;
  for (;;) {
    if (::recv(unregistered_fd_, &byte, 1, MSG_PEEK) >= 0) return true;
    if (errno == EINTR) continue;
    return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

std::size_t Connection::try_read(asio::mutable_buffer buffer, error_code& ec) {
  if (unregistered_fd_ < 0) return socket_.read_some(buffer, ec);
  ec.clear();
  if (buffer.size() == 0) return 0;
  for (;;) {
    const ssize_t n = ::recv(unregistered_fd_, buffer.data(), buffer.size(), 0);
    if (n > 0) return static_cast<std::size_t>(n);
    if (n == 0) {
      ec = asio::error::eof;
      return 0;
    }
    if (errno == EINTR) continue;
    ec = error_code(errno, asio::error::get_system_category());
    return 0;
  }
}

std::size_t Connection::try_write(asio::const_buffer buffer, error_code& ec) {
  if (unregistered_fd_ < 0) return socket_.write_some(buffer, ec);
  ec.clear();
  if (buffer.size() == 0) return 0;
  for (;;) {
    const ssize_t n = ::send(unregistered_fd_, buffer.data(), buffer.size(), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    ec = error_code(errno, asio::error::get_system_category());
    return 0;
  }
}

void Connection::write_log(spdlog::level::level_enum level, std::string_view text) {
  logger_.log(level, "[{} {}] {}", listener_name_, peer_.to_string(), text);
}

void Connection::close() {
  if (unregistered_fd_ >= 0) ::close(std::exchange(unregistered_fd_, -1));
  error_code ignored;
  socket_.close(ignored);
  if (on_close_) std::exchange(on_close_, nullptr)();
}

bool Connection::arm(Duration timeout) {
  const auto now = clock::now();
  auto deadline = session_deadline_;
  Deadline kind = Deadline::session;
  if (timeout.count() > 0 && now + timeout < deadline) {
    deadline = now + timeout;
    kind = Deadline::call;
  }
  if (idle_timeout_.count() > 0 && now + idle_timeout_ < deadline) {
    deadline = now + idle_timeout_;
    kind = Deadline::idle;
  }
  if (deadline == clock::time_point::max()) return false;
  armed_for_ = kind;
  timed_out_ = false;
  timer_.expires_at(deadline);
  ++timer_waits_;
  // The completion may run after this I/O step ended (it was already queued
  // when disarm() ran): the generation tells a stale expiry from a live one,
  // and quiesce() keeps the connection alive until every completion ran.
  timer_.async_wait([this, generation = ++timer_generation_](error_code ec) {
    --timer_waits_;
    if (ec || generation != timer_generation_) return;
    timed_out_ = true;
    expired_ = armed_for_;
    error_code ignored;
    socket_.cancel(ignored);
  });
  return true;
}

void Connection::disarm() {
  ++timer_generation_;
  timer_.cancel();
}

IoResult Connection::finish(error_code ec, std::size_t bytes) {
  if (ec && timed_out_) ec = asio::error::timed_out;
  return IoResult{ec, bytes};
}

namespace {

bool would_block(const error_code& ec) {
  return ec == asio::error::would_block || ec == asio::error::try_again;
}

}  // namespace

// The socket is non-blocking: each step first tries the system call, and only
// when it would block waits for readiness. Data that is already there (the
// common case right after accept) costs no trip through the reactor, and the
// buffer is written only by the call itself, never while it waits.
asio::awaitable<IoResult> Connection::read_some(asio::mutable_buffer buffer, Duration timeout) {
  bool armed = false;
  for (;;) {
    error_code ec;
    const std::size_t n = try_read(buffer, ec);
    if (!would_block(ec)) {
      if (armed) disarm();
      co_return finish(ec, n);
    }
    socket_type& socket = registered_socket();
    if (!armed) armed = arm(timeout);
    auto [wait_ec] = co_await socket.async_wait(socket_type::wait_read, asio::as_tuple(asio::use_awaitable));
    if (wait_ec) {
      if (armed) disarm();
      co_return finish(wait_ec, 0);
    }
  }
}

asio::awaitable<IoResult> Connection::receive(asio::mutable_buffer buffer, Duration timeout) {
  if (unregistered_fd_ >= 0) {
    error_code ec;
    const std::size_t n = try_read(buffer, ec);
    if (!would_block(ec)) co_return finish(ec, n);
  }
  // The reactor reads straight into `buffer` when data comes, and tries at
  // once only when the last read did not empty the socket: no system call
  // is spent on a read that would block, nor on re-arming the descriptor as
  // a wait for readiness would.
  socket_type& socket = registered_socket();
  const bool armed = arm(timeout);
  auto [ec, n] = co_await socket.async_read_some(buffer, asio::as_tuple(asio::use_awaitable));
  if (armed) disarm();
  co_return finish(ec, n);
}

asio::awaitable<IoResult> Connection::wait_readable(Duration timeout) {
  socket_type& socket = registered_socket();
  const bool armed = arm(timeout);
  auto [ec] = co_await socket.async_wait(socket_type::wait_read, asio::as_tuple(asio::use_awaitable));
  if (armed) disarm();
  co_return finish(ec, 0);
}

asio::awaitable<IoResult> Connection::write(asio::const_buffer buffer, Duration timeout) {
  std::size_t total = 0;
  bool armed = false;
  while (buffer.size() > 0) {
    error_code ec;
    const std::size_t n = try_write(buffer, ec);
    if (!ec) {
      total += n;
      buffer += n;
      // Bytes moved: an idle deadline starts again from now.
      if (armed && idle_timeout_.count() > 0) {
        disarm();
        armed = false;
      }
      continue;
    }
    if (!would_block(ec)) {
      if (armed) disarm();
      co_return finish(ec, total);
    }
    socket_type& socket = registered_socket();
    if (!armed) armed = arm(timeout);
    auto [wait_ec] = co_await socket.async_wait(socket_type::wait_write, asio::as_tuple(asio::use_awaitable));
    if (wait_ec) {
      if (armed) disarm();
      co_return finish(wait_ec, total);
    }
  }
  if (armed) disarm();
  co_return IoResult{{}, total};
}

asio::awaitable<void> Connection::quiesce() {
  if (timer_waits_ == 0) co_return;
  disarm();
  while (timer_waits_ > 0) co_await asio::post(socket_.get_executor(), asio::use_awaitable);
}

}  // namespace portico
