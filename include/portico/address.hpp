#pragma once
// Listen addresses as written in the config: "a.b.c.d:port", "[v6]:port" or "unix:/path".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <portico/result.hpp>

namespace portico {

struct Address {
  enum class Kind { ipv4, ipv6, unix_path };

  Kind kind = Kind::ipv4;
  std::string host;   // numeric IP, without brackets; empty for unix_path
  std::uint16_t port = 0;
  std::string path;   // for unix_path

  bool is_ip() const { return kind != Kind::unix_path; }
  // Canonical spelling: "127.0.0.1:8888", "[::1]:8888", "unix:/run/x.sock".
  std::string to_string() const;

  friend bool operator==(const Address&, const Address&) = default;
};

// Parses the syntax above; host names are not accepted (a listener binds to
// an address, not to whatever a name resolves to today). An error says
// what is wrong with `text`.
Result<Address> parse_address(std::string_view text);

// A port number as written in an address: 0 to 65535 in decimal digits
// alone (no sign, no space, at most five digits).
std::optional<std::uint16_t> parse_port(std::string_view text);

}  // namespace portico
