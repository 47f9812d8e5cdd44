#pragma once
// Where the proxy handler connects: an upstream as written in the config,
// and one attempt to reach it within a time limit.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/system/error_code.hpp>

#include <portico/duration.hpp>
#include <portico/result.hpp>

namespace portico::handlers {

struct Upstream {
  enum class Kind { ip, unix_path, host_name };

  Kind kind = Kind::ip;
  std::string host;  // a numeric IP (ip) or a DNS name (host_name)
  std::uint16_t port = 0;
  std::string path;  // unix_path
  std::string text;  // canonical spelling, for logs: "10.0.0.5:5432", "[::1]:80", "unix:/run/x", "db:5432"
};

// Parses "a.b.c.d:port", "[ipv6]:port", "unix:/path" or "host.name:port"
// (port 1-65535). An error says what is wrong with `text`.
Result<Upstream> parse_upstream(std::string_view text);

using UpstreamSocket = boost::asio::generic::stream_protocol::socket;

// Connects `socket` (closed on entry) to `upstream`, trying each address a
// name resolves to, all within `timeout` (zero = no limit). Names are
// resolved by Asio's resolver on its own thread, so the io_context never
// blocks on DNS. Returns an empty code on success, asio::error::timed_out
// when time ran out, or the last error. Honours terminal cancellation (the
// socket is then closed and operation_aborted returned).
boost::asio::awaitable<boost::system::error_code> connect_upstream(const Upstream& upstream, UpstreamSocket& socket,
                                                                   Duration timeout);

}  // namespace portico::handlers
