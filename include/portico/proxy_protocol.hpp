#pragma once
// The PROXY protocol (HAProxy's, versions 1 and 2): the header a proxy sends
// before the client's bytes so that the server learns who the client is.
// Building it (the proxy handler's side) and parsing it incrementally (a
// listener's side). Pure functions on bytes: no sockets, no I/O, no
// allocation beyond the results. Listeners with proxy_protocol = true read
// the header themselves; a handler that relays to a server expecting one
// builds it here.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <optional>
#include <vector>

#include <portico/endpoint.hpp>

namespace portico {

// One end of a proxied connection as a header carries it.
struct ProxyEndpoint {
  enum class Family : std::uint8_t { unspecified, ipv4, ipv6, unix_path };

  Family family = Family::unspecified;
  std::array<std::uint8_t, 16> ip{};  // network byte order; ipv4 uses the first 4
  std::uint16_t port = 0;
  std::string path;                   // unix_path only; at most 108 bytes

  static ProxyEndpoint ipv4(const std::array<std::uint8_t, 4>& bytes, std::uint16_t port);
  static ProxyEndpoint ipv6(const std::array<std::uint8_t, 16>& bytes, std::uint16_t port);
  static ProxyEndpoint unix_socket(std::string path);

  bool is_ip() const { return family == Family::ipv4 || family == Family::ipv6; }
  // "192.0.2.1", "2001:db8::1", the path, or "" when unspecified.
  std::string address_string() const;
  // "192.0.2.1:80", "[2001:db8::1]:80", "unix:/path" or "unknown".
  std::string to_string() const;

  friend bool operator==(const ProxyEndpoint&, const ProxyEndpoint&) = default;
};

enum class ProxyCommand : std::uint8_t {
  proxy,  // a relayed connection: the addresses (if any) are the client's
  local,  // v2 only: the proxy's own connection (a health check)
};

struct ProxyHeader {
  int version = 0;  // 1 or 2
  ProxyCommand command = ProxyCommand::proxy;
  // Both unspecified for v1 "UNKNOWN", v2 LOCAL and v2 AF_UNSPEC: the
  // receiver then keeps the connection's own endpoints.
  ProxyEndpoint source;
  ProxyEndpoint destination;

  bool has_addresses() const { return source.family != ProxyEndpoint::Family::unspecified; }
};

// The longest header either version may take; a receiver never needs to
// buffer more than this before knowing the outcome. v2 allows 16 + 65535
// bytes in theory; real senders put at most a few hundred bytes of TLVs
// after the addresses, so anything longer is refused as abuse.
inline constexpr std::size_t proxy_v1_max_length = 107;
inline constexpr std::size_t proxy_v2_max_length = 4096;
inline constexpr std::size_t proxy_header_max_length = proxy_v2_max_length;

enum class ProxyParseStatus : std::uint8_t {
  need_more,  // everything so far is a valid beginning: read more and call again
  done,       // `header` is set; the first `header_length` bytes were the header
  invalid,    // not a PROXY header, or a malformed one; `error` says why
};

struct ProxyParseResult {
  ProxyParseStatus status = ProxyParseStatus::need_more;
  std::size_t header_length = 0;
  ProxyHeader header;
  std::string error;
};

// An endpoint as a header carries it (an unnamed Unix socket as a Unix
// endpoint with an empty path), and back: nullopt for an unspecified one.
ProxyEndpoint proxy_endpoint(const Endpoint& endpoint);
std::optional<Endpoint> endpoint_of(const ProxyEndpoint& endpoint);

// Parses a v1 or v2 header at the start of `data` (everything received so
// far). Call again with the longer buffer after need_more; bytes after the
// header are the client's and are left alone. Detects garbage as early as
// possible: a wrong first byte is invalid at once.
ProxyParseResult parse_proxy_header(std::span<const std::uint8_t> data);

// The v1 text line, "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n".
// Mixed IPv4/IPv6 endpoints are sent as TCP6 with the IPv4 one mapped
// (::ffff:a.b.c.d); anything else (Unix sockets, unspecified) as
// "PROXY UNKNOWN\r\n".
std::vector<std::uint8_t> build_proxy_v1(const ProxyEndpoint& source, const ProxyEndpoint& destination);

// The v2 binary header. IP endpoints as for v1; two Unix endpoints as
// AF_UNIX; anything else as AF_UNSPEC with no addresses. With
// ProxyCommand::local the endpoints are ignored.
std::vector<std::uint8_t> build_proxy_v2(const ProxyEndpoint& source, const ProxyEndpoint& destination,
                                         ProxyCommand command = ProxyCommand::proxy);

}  // namespace portico
