#pragma once
// Small things every coroutine of portico and its handlers uses.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

namespace portico {

// The completion token for awaiting Asio operations: the error comes back as
// a value, never as an exception, since a reset or an EOF is an ordinary
// outcome of a connection.
//
//   auto [ec, n] = co_await socket.async_read_some(buffer, portico::use_tuple);
inline constexpr boost::asio::as_tuple_t<boost::asio::use_awaitable_t<>> use_tuple{};

// True for what a non-blocking call returns when it would have to wait.
inline bool would_block(const boost::system::error_code& ec) {
  return ec == boost::asio::error::would_block || ec == boost::asio::error::try_again;
}

}  // namespace portico
