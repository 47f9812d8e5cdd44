#include <portico/address.hpp>

#include <charconv>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

#include <portico/text.hpp>

namespace portico {

std::string Address::to_string() const {
  switch (kind) {
    case Kind::ipv4: return fmt::format("{}:{}", host, port);
    case Kind::ipv6: return fmt::format("[{}]:{}", host, port);
    case Kind::unix_path: return fmt::format("unix:{}", path);
  }
  return {};
}

namespace {

constexpr std::string_view syntax =
    "expected \"a.b.c.d:port\", \"[ipv6]:port\" or \"unix:/path\"";

}  // namespace

Result<Address> parse_address(std::string_view text) {
  // A NUL ends the text for inet_pton and for a socket path: whatever
  // followed it would be dropped without a word ("127.0.0.1\0junk:80").
  if (text.find('\0') != std::string_view::npos) {
    return fail("invalid address {}: contains a NUL character", quote_text(text));
  }
  Address out;
  if (text.starts_with("unix:")) {
    out.kind = Address::Kind::unix_path;
    out.path = std::string(text.substr(5));
    if (out.path.empty() || out.path.front() != '/') {
      return fail("invalid address {}: a Unix socket path must be absolute", quote_text(text));
    }
    // sockaddr_un holds 108 bytes including the terminating NUL.
    if (out.path.size() > 107) {
      return fail("invalid address {}: a Unix socket path is at most 107 bytes", quote_text(text));
    }
    return out;
  }

  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail("invalid address {}: {}", quote_text(text), syntax);
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    out.kind = Address::Kind::ipv6;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return fail("invalid address {}: missing port; {}", quote_text(text), syntax);
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return fail("invalid address {}: an IPv6 address needs brackets, e.g. \"[::1]:8888\"",
                  quote_text(text));
    }
    out.kind = Address::Kind::ipv4;
  }

  const auto number = parse_port(port);
  if (!number) {
    return fail("invalid address {}: port {} is not a number from 0 to 65535", quote_text(text), quote_text(port));
  }
  out.port = *number;
  boost::system::error_code ec;
  if (out.kind == Address::Kind::ipv4) {
    const auto ip = boost::asio::ip::make_address_v4(std::string(host), ec);
    if (ec) {
      return fail("invalid address {}: {} is not an IPv4 address (host names are not accepted)",
                  quote_text(text), quote_text(host));
    }
    out.host = ip.to_string();
  } else {
    const auto ip = boost::asio::ip::make_address_v6(std::string(host), ec);
    if (ec) {
      return fail("invalid address {}: {} is not an IPv6 address", quote_text(text), quote_text(host));
    }
    out.host = ip.to_string();
  }
  return out;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

}  // namespace portico
