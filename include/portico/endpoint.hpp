#pragma once
// One end of a connection: an IP address and port, or a Unix socket.

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

namespace portico {

struct Endpoint {
  boost::asio::ip::address ip;  // never an IPv4-mapped IPv6 address: those are held as IPv4
  std::uint16_t port = 0;
  bool is_unix = false;
  std::string path;  // a Unix socket's path, when it has one (a client's usually has none)

  // "127.0.0.1:5555", "[::1]:5555", "unix:/run/x.sock", or "unix" for a
  // Unix socket without a name.
  std::string to_string() const;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// The endpoint a socket address names (AF_INET, AF_INET6 or AF_UNIX; any
// other family gives an empty Unix endpoint). A dual-stack listener sees
// IPv4 clients as ::ffff:a.b.c.d: they come out as the IPv4 address.
Endpoint endpoint_from(const sockaddr* address, std::size_t length);

// `ip` itself, or the IPv4 address an IPv4-mapped IPv6 address carries.
boost::asio::ip::address unmapped(const boost::asio::ip::address& ip);

}  // namespace portico

// Endpoints format as to_string() does, so that a log call whose level is
// off does not build the string: `conn.log(debug, "from {}", conn.peer())`.
template <>
struct fmt::formatter<portico::Endpoint> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const portico::Endpoint& endpoint, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(endpoint.to_string(), ctx);
  }
};
