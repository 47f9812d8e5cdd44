#pragma once
// Address prefixes for allow/deny rules: "10.0.0.0/8", "2001:db8::/32", or a
// single address ("192.0.2.7" = /32, "::1" = /128).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

#include <portico/result.hpp>

namespace portico {

// An IP address as 16 bytes: IPv4 addresses, and IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d), are held as IPv4 so that both match IPv4 rules.
struct IpBytes {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;  // then only bytes[0..3] count
};

struct Cidr {
  IpBytes network;
  unsigned prefix = 0;
  std::string text;  // as written

  bool contains(const IpBytes& ip) const;
};

// An error says what is wrong with `text`.
Result<Cidr> parse_cidr(std::string_view text);
// Parses a numeric IPv4 or IPv6 address, unmapping IPv4-mapped ones.
std::optional<IpBytes> parse_ip(std::string_view text);
// The bytes of `ip`, unmapping an IPv4-mapped one.
IpBytes ip_bytes(const boost::asio::ip::address& ip);
// `ip` with all but the first `prefix` bits cleared.
IpBytes mask(const IpBytes& ip, unsigned prefix);

}  // namespace portico
