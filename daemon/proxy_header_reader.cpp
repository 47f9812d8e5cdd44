#include "daemon/proxy_header_reader.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "daemon/proxy_protocol.hpp"

namespace portico {

namespace asio = boost::asio;

namespace {

Peer peer_of(const ProxyEndpoint& endpoint) {
  Peer peer;
  if (endpoint.family == ProxyEndpoint::Family::ipv4) {
    std::array<unsigned char, 4> bytes{};
    std::memcpy(bytes.data(), endpoint.ip.data(), 4);
    peer.ip = asio::ip::address_v4(bytes);
  } else if (endpoint.family == ProxyEndpoint::Family::ipv6) {
    std::array<unsigned char, 16> bytes{};
    std::memcpy(bytes.data(), endpoint.ip.data(), 16);
    peer.ip = asio::ip::address_v6(bytes);
  } else {
    peer.is_unix = true;
  }
  peer.port = endpoint.port;
  return peer;
}

}  // namespace

// The header is peeked, not read, until it is complete, so that exactly its
// bytes are consumed and the client's data that follows stays in the socket
// for the handler. Senders write the header in one piece; a header that
// arrives in parts (rare, or hostile) is polled every 10ms until the
// deadline, since readiness cannot signal "more than is already there".
asio::awaitable<std::string> read_proxy_header(Connection& connection, Duration timeout) {
  std::array<std::uint8_t, proxy_header_max_length> buffer;
  const auto deadline = Connection::clock::now() + timeout;
  const int fd = connection.socket().native_handle();
  asio::steady_timer pause(connection.socket().get_executor());
  for (;;) {
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_PEEK);
    if (n == 0) co_return "closed before sending a PROXY protocol header";
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      co_return fmt::format("reading the PROXY protocol header: {}", std::strerror(errno));
    }
    const auto left = std::chrono::duration_cast<Duration>(deadline - Connection::clock::now());
    if (left.count() <= 0) co_return "no complete PROXY protocol header within the timeout";
    if (n > 0) {
      const auto result = parse_proxy_header(std::span(buffer.data(), static_cast<std::size_t>(n)));
      if (result.status == ProxyParseStatus::invalid) co_return "bad PROXY protocol header: " + result.error;
      if (result.status == ProxyParseStatus::done) {
        // Consume exactly the header; it is all in the socket buffer already.
        if (::recv(fd, buffer.data(), result.header_length, 0) != static_cast<ssize_t>(result.header_length)) {
          co_return "reading the PROXY protocol header failed";
        }
        if (result.header.command == ProxyCommand::proxy && result.header.has_addresses()) {
          connection.set_peer(peer_of(result.header.source));
        }
        co_return std::string();
      }
      // Part of it is there; readiness cannot say when more arrives.
      pause.expires_after(std::min<Duration>(left, std::chrono::milliseconds(10)));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    const IoResult ready = co_await connection.wait_readable(left);
    if (ready.timed_out()) co_return "no complete PROXY protocol header within the timeout";
    if (!ready.ok()) co_return fmt::format("reading the PROXY protocol header: {}", ready.ec.message());
  }
}

}  // namespace portico
