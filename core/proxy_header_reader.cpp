#include "core/proxy_header_reader.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <portico/proxy_protocol.hpp>

namespace portico {

namespace asio = boost::asio;

// The header's bytes are taken off the socket as they come, and never one
// byte more: each read first looks (MSG_PEEK), and takes everything it saw
// only while the header is incomplete (until then every byte belongs to
// it: a v1 line has no CR LF yet, a v2 header is shorter than its length),
// or exactly the rest of the header once it is complete. So the client's
// data stays in the socket for the handler, and between reads the socket
// is empty: a wait for readability ends only when the client sends more.
asio::awaitable<Result<ProxiedAddresses>> read_proxy_header(ServerConnection& connection, Duration timeout) {
  std::array<std::uint8_t, proxy_header_max_length> header;
  std::size_t have = 0;
  const auto deadline = Connection::clock::now() + timeout;
  for (;;) {
    if (have == header.size()) co_return fail("PROXY protocol header longer than {} bytes", header.size());
    const ssize_t n = ::recv(connection.fd(), header.data() + have, header.size() - have, MSG_PEEK);
    if (n == 0) co_return fail("closed before sending a complete PROXY protocol header");
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      co_return fail("reading the PROXY protocol header: {}", std::strerror(errno));
    }
    if (n > 0) {
      const auto seen = static_cast<std::size_t>(n);
      const auto result = parse_proxy_header(std::span(header.data(), have + seen));
      if (result.status == ProxyParseStatus::invalid) co_return fail("bad PROXY protocol header: {}", result.error);
      const std::size_t take = result.status == ProxyParseStatus::done ? result.header_length - have : seen;
      if (::recv(connection.fd(), header.data() + have, take, 0) != static_cast<ssize_t>(take)) {
        co_return fail("reading the PROXY protocol header failed");
      }
      have += take;
      if (result.status == ProxyParseStatus::done) {
        ProxiedAddresses addresses;
        if (result.header.command == ProxyCommand::proxy && result.header.has_addresses()) {
          addresses.client = endpoint_of(result.header.source);
          addresses.server = endpoint_of(result.header.destination);
        }
        co_return addresses;
      }
      continue;
    }
    const auto left = std::chrono::duration_cast<Duration>(deadline - Connection::clock::now());
    if (left.count() <= 0) co_return fail("no complete PROXY protocol header within the timeout");
    const IoResult ready = co_await connection.wait_readable(left);
    if (ready.timed_out()) co_return fail("no complete PROXY protocol header within the timeout");
    if (!ready.ok()) co_return fail("reading the PROXY protocol header: {}", ready.ec.message());
  }
}

}  // namespace portico
