#include <portico/connection.hpp>

#include <algorithm>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
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
      timer_(socket_.get_executor()),
      peer_(std::move(peer)),
      listener_name_(listener_name),
      logger_(logger) {}

Connection::~Connection() = default;

void Connection::write_log(spdlog::level::level_enum level, std::string_view text) {
  logger_.log(level, "[{} {}] {}", listener_name_, peer_.to_string(), text);
}

void Connection::close() {
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
// common case right after accept) costs no trip through the reactor, and no
// buffer is tied up while the connection waits.
asio::awaitable<IoResult> Connection::read_some(asio::mutable_buffer buffer, Duration timeout) {
  bool armed = false;
  for (;;) {
    error_code ec;
    const std::size_t n = socket_.read_some(buffer, ec);
    if (!would_block(ec)) {
      if (armed) disarm();
      co_return finish(ec, n);
    }
    if (!armed) armed = arm(timeout);
    auto [wait_ec] = co_await socket_.async_wait(socket_type::wait_read, asio::as_tuple(asio::use_awaitable));
    if (wait_ec) {
      if (armed) disarm();
      co_return finish(wait_ec, 0);
    }
  }
}

asio::awaitable<IoResult> Connection::wait_readable(Duration timeout) {
  const bool armed = arm(timeout);
  auto [ec] = co_await socket_.async_wait(socket_type::wait_read, asio::as_tuple(asio::use_awaitable));
  if (armed) disarm();
  co_return finish(ec, 0);
}

asio::awaitable<IoResult> Connection::write(asio::const_buffer buffer, Duration timeout) {
  std::size_t total = 0;
  bool armed = false;
  while (buffer.size() > 0) {
    error_code ec;
    const std::size_t n = socket_.write_some(buffer, ec);
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
    if (!armed) armed = arm(timeout);
    auto [wait_ec] = co_await socket_.async_wait(socket_type::wait_write, asio::as_tuple(asio::use_awaitable));
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
