#include <portico/proxy_protocol.hpp>

#include <portico/address.hpp>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

namespace portico {

namespace {

using Family = ProxyEndpoint::Family;
using Bytes = std::span<const std::uint8_t>;

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::array<std::uint8_t, 12> v2_signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::size_t v2_fixed_length = 16;
constexpr std::size_t unix_path_field = 108;  // sun_path in the v2 address block

// v2 address family and transport byte (high nibble family, low transport).
constexpr std::uint8_t v2_unspec = 0x00;
constexpr std::uint8_t v2_tcp4 = 0x11;
constexpr std::uint8_t v2_tcp6 = 0x21;
constexpr std::uint8_t v2_unix_stream = 0x31;

ProxyParseResult invalid(std::string why) {
  ProxyParseResult r;
  r.status = ProxyParseStatus::invalid;
  r.error = std::move(why);
  return r;
}

ProxyParseResult done(ProxyHeader header, std::size_t length) {
  ProxyParseResult r;
  r.status = ProxyParseStatus::done;
  r.header = std::move(header);
  r.header_length = length;
  return r;
}

// True when the bytes received so far agree with the start of `expected`.
bool matches_prefix(Bytes data, Bytes expected) {
  const std::size_t n = std::min(data.size(), expected.size());
  return std::equal(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n), expected.begin());
}

std::uint16_t read_be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

void append_be16(std::vector<std::uint8_t>& out, std::uint16_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value & 0xff));
}

// ---- v1 -------------------------------------------------------------------

std::optional<ProxyEndpoint> parse_v1_endpoint(std::string_view ip, std::string_view port, Family family) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ip.empty() || ip.size() >= sizeof text) return std::nullopt;
  std::memcpy(text, ip.data(), ip.size());
  ProxyEndpoint e;
  e.family = family;
  if (inet_pton(family == Family::ipv4 ? AF_INET : AF_INET6, text, e.ip.data()) != 1) return std::nullopt;
  const auto number = parse_port(port);
  if (!number) return std::nullopt;
  e.port = *number;
  return e;
}

ProxyParseResult parse_v1_line(std::string_view line, std::size_t length) {
  std::vector<std::string_view> fields;
  for (std::size_t start = 0;;) {
    const auto space = line.find(' ', start);
    fields.push_back(line.substr(start, space - start));
    if (space == std::string_view::npos) break;
    start = space + 1;
  }
  ProxyHeader header;
  header.version = 1;
  // Whatever follows UNKNOWN is to be ignored (the spec lets a sender put
  // addresses there that it could not classify).
  if (fields[0] == "UNKNOWN") return done(header, length);
  if (fields[0] != "TCP4" && fields[0] != "TCP6") {
    return invalid("v1 header names an unknown protocol \"" + std::string(fields[0]) + "\"");
  }
  if (fields.size() != 5) return invalid("v1 header needs 4 single-space-separated fields after " + std::string(fields[0]));
  const Family family = fields[0] == "TCP4" ? Family::ipv4 : Family::ipv6;
  auto source = parse_v1_endpoint(fields[1], fields[3], family);
  auto destination = parse_v1_endpoint(fields[2], fields[4], family);
  if (!source || !destination) return invalid("v1 header has an invalid " + std::string(fields[0]) + " address or port");
  header.source = std::move(*source);
  header.destination = std::move(*destination);
  return done(std::move(header), length);
}

ProxyParseResult parse_v1(Bytes data) {
  const Bytes prefix(reinterpret_cast<const std::uint8_t*>(v1_prefix.data()), v1_prefix.size());
  if (!matches_prefix(data, prefix)) return invalid("not a PROXY protocol header");
  const std::size_t limit = std::min(data.size(), proxy_v1_max_length);
  for (std::size_t i = 0; i < limit; ++i) {
    const std::uint8_t c = data[i];
    if (c == '\n') {
      if (i == 0 || data[i - 1] != '\r') return invalid("v1 header must end with CR LF");
      const char* text = reinterpret_cast<const char*>(data.data());
      return parse_v1_line(std::string_view(text + v1_prefix.size(), i - 1 - v1_prefix.size()), i + 1);
    }
    // Binary garbage is refused on its first byte rather than after 107.
    if (c == '\r') {
      if (i + 1 < data.size() && data[i + 1] != '\n') return invalid("v1 header has a CR not followed by LF");
    } else if (c < 0x20 || c > 0x7e) {
      return invalid("v1 header contains a byte that is not printable ASCII");
    }
  }
  if (data.size() >= proxy_v1_max_length) return invalid("v1 header is longer than 107 bytes");
  return ProxyParseResult{};
}

// ---- v2 -------------------------------------------------------------------

// Bytes of the address block for a PROXY command's family byte; nullopt when
// the family or transport is not one a stream connection can have.
std::optional<std::size_t> v2_address_length(std::uint8_t family) {
  switch (family) {
    case v2_unspec: return 0;
    case v2_tcp4: return 12;
    case v2_tcp6: return 36;
    case v2_unix_stream: return 2 * unix_path_field;
    default: return std::nullopt;
  }
}

ProxyEndpoint v2_unix_endpoint(const std::uint8_t* field) {
  const char* text = reinterpret_cast<const char*>(field);
  return ProxyEndpoint::unix_socket(std::string(text, strnlen(text, unix_path_field)));
}

void parse_v2_addresses(std::uint8_t family, const std::uint8_t* p, ProxyHeader& header) {
  if (family == v2_tcp4) {
    std::array<std::uint8_t, 4> src{}, dst{};
    std::copy_n(p, 4, src.begin());
    std::copy_n(p + 4, 4, dst.begin());
    header.source = ProxyEndpoint::ipv4(src, read_be16(p + 8));
    header.destination = ProxyEndpoint::ipv4(dst, read_be16(p + 10));
  } else if (family == v2_tcp6) {
    std::array<std::uint8_t, 16> src{}, dst{};
    std::copy_n(p, 16, src.begin());
    std::copy_n(p + 16, 16, dst.begin());
    header.source = ProxyEndpoint::ipv6(src, read_be16(p + 32));
    header.destination = ProxyEndpoint::ipv6(dst, read_be16(p + 34));
  } else if (family == v2_unix_stream) {
    header.source = v2_unix_endpoint(p);
    header.destination = v2_unix_endpoint(p + unix_path_field);
  }
}

ProxyParseResult parse_v2(Bytes data) {
  if (!matches_prefix(data, v2_signature)) return invalid("not a PROXY protocol header");
  // Each fixed byte is checked as soon as it arrives.
  if (data.size() > 12) {
    if ((data[12] >> 4) != 2) return invalid("v2 header has unsupported version " + std::to_string(data[12] >> 4));
    if ((data[12] & 0x0f) > 1) return invalid("v2 header has unknown command " + std::to_string(data[12] & 0x0f));
  }
  const bool local = data.size() > 12 && (data[12] & 0x0f) == 0;
  std::optional<std::size_t> address_length;
  if (data.size() > 13 && !local) {
    address_length = v2_address_length(data[13]);
    if (!address_length) {
      const bool datagram = (data[13] & 0x0f) == 0x02;
      return invalid(datagram ? std::string("v2 header describes a datagram connection, not a stream")
                              : "v2 header has unknown address family " + std::to_string(data[13]));
    }
  }
  if (data.size() < v2_fixed_length) return ProxyParseResult{};

  const std::size_t length = v2_fixed_length + read_be16(data.data() + 14);
  if (length > proxy_v2_max_length) {
    return invalid("v2 header is " + std::to_string(length) + " bytes, more than the " +
                   std::to_string(proxy_v2_max_length) + " accepted");
  }
  if (!local && v2_fixed_length + *address_length > length) {
    return invalid("v2 header is too short for its address family");
  }
  if (data.size() < length) return ProxyParseResult{};

  ProxyHeader header;
  header.version = 2;
  // LOCAL: the block is to be skipped whatever its family says.
  if (local) {
    header.command = ProxyCommand::local;
    return done(std::move(header), length);
  }
  parse_v2_addresses(data[13], data.data() + v2_fixed_length, header);
  // TLVs (ALPN, authority, SSL, ...) are not used, but their framing must
  // add up: a header that lies about its own layout is not trusted.
  for (std::size_t pos = v2_fixed_length + *address_length; pos < length;) {
    if (length - pos < 3) return invalid("v2 header has a truncated TLV");
    pos += 3 + read_be16(data.data() + pos + 1);
    if (pos > length) return invalid("v2 header has a TLV longer than the header");
  }
  return done(std::move(header), length);
}

// Both endpoints as one IP family (IPv4 mapped into IPv6 when they differ),
// or nullopt when either is not an IP endpoint.
std::optional<std::pair<ProxyEndpoint, ProxyEndpoint>> ip_pair(ProxyEndpoint a, ProxyEndpoint b) {
  if (!a.is_ip() || !b.is_ip()) return std::nullopt;
  const auto to_v6 = [](ProxyEndpoint& e) {
    if (e.family != Family::ipv4) return;
    std::array<std::uint8_t, 16> mapped{};
    mapped[10] = mapped[11] = 0xff;
    std::copy_n(e.ip.begin(), 4, mapped.begin() + 12);
    e = ProxyEndpoint::ipv6(mapped, e.port);
  };
  if (a.family != b.family) {
    to_v6(a);
    to_v6(b);
  }
  return std::pair{std::move(a), std::move(b)};
}

}  // namespace

ProxyEndpoint ProxyEndpoint::ipv4(const std::array<std::uint8_t, 4>& bytes, std::uint16_t port) {
  ProxyEndpoint e;
  e.family = Family::ipv4;
  std::copy(bytes.begin(), bytes.end(), e.ip.begin());
  e.port = port;
  return e;
}

ProxyEndpoint ProxyEndpoint::ipv6(const std::array<std::uint8_t, 16>& bytes, std::uint16_t port) {
  ProxyEndpoint e;
  e.family = Family::ipv6;
  e.ip = bytes;
  e.port = port;
  return e;
}

ProxyEndpoint ProxyEndpoint::unix_socket(std::string path) {
  ProxyEndpoint e;
  e.family = Family::unix_path;
  e.path = std::move(path);
  return e;
}

std::string ProxyEndpoint::address_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  switch (family) {
    case Family::ipv4: return inet_ntop(AF_INET, ip.data(), text, sizeof text) ? text : "";
    case Family::ipv6: return inet_ntop(AF_INET6, ip.data(), text, sizeof text) ? text : "";
    case Family::unix_path: return path;
    case Family::unspecified: break;
  }
  return {};
}

std::string ProxyEndpoint::to_string() const {
  switch (family) {
    case Family::ipv4: return address_string() + ":" + std::to_string(port);
    case Family::ipv6: return "[" + address_string() + "]:" + std::to_string(port);
    case Family::unix_path: return "unix:" + path;
    case Family::unspecified: break;
  }
  return "unknown";
}

ProxyEndpoint proxy_endpoint(const Endpoint& endpoint) {
  if (endpoint.is_unix) return ProxyEndpoint::unix_socket(endpoint.path);
  if (endpoint.ip.is_v4()) return ProxyEndpoint::ipv4(endpoint.ip.to_v4().to_bytes(), endpoint.port);
  return ProxyEndpoint::ipv6(endpoint.ip.to_v6().to_bytes(), endpoint.port);
}

std::optional<Endpoint> endpoint_of(const ProxyEndpoint& endpoint) {
  Endpoint out;
  switch (endpoint.family) {
    case Family::unspecified: return std::nullopt;
    case Family::ipv4: {
      boost::asio::ip::address_v4::bytes_type bytes;
      std::memcpy(bytes.data(), endpoint.ip.data(), 4);
      out.ip = boost::asio::ip::address_v4(bytes);
      break;
    }
    case Family::ipv6: {
      boost::asio::ip::address_v6::bytes_type bytes;
      std::memcpy(bytes.data(), endpoint.ip.data(), 16);
      out.ip = unmapped(boost::asio::ip::address_v6(bytes));
      break;
    }
    case Family::unix_path:
      out.is_unix = true;
      out.path = endpoint.path;
      break;
  }
  out.port = endpoint.port;
  return out;
}

ProxyParseResult parse_proxy_header(std::span<const std::uint8_t> data) {
  if (data.empty()) return ProxyParseResult{};
  // The two signatures differ in their first byte.
  if (data[0] == v2_signature[0]) return parse_v2(data);
  return parse_v1(data);
}

std::vector<std::uint8_t> build_proxy_v1(const ProxyEndpoint& source, const ProxyEndpoint& destination) {
  std::string line = "PROXY UNKNOWN\r\n";
  if (auto pair = ip_pair(source, destination)) {
    const auto& [src, dst] = *pair;
    line = std::string("PROXY ") + (src.family == Family::ipv4 ? "TCP4 " : "TCP6 ") + src.address_string() + " " +
           dst.address_string() + " " + std::to_string(src.port) + " " + std::to_string(dst.port) + "\r\n";
  }
  return {line.begin(), line.end()};
}

std::vector<std::uint8_t> build_proxy_v2(const ProxyEndpoint& source, const ProxyEndpoint& destination,
                                         ProxyCommand command) {
  std::vector<std::uint8_t> out(v2_signature.begin(), v2_signature.end());
  out.reserve(v2_fixed_length + 2 * unix_path_field);
  out.push_back(command == ProxyCommand::local ? 0x20 : 0x21);
  if (command == ProxyCommand::local) {
    out.push_back(v2_unspec);
    append_be16(out, 0);
    return out;
  }
  if (auto pair = ip_pair(source, destination)) {
    const auto& [src, dst] = *pair;
    const std::size_t ip_size = src.family == Family::ipv4 ? 4 : 16;
    out.push_back(ip_size == 4 ? v2_tcp4 : v2_tcp6);
    append_be16(out, static_cast<std::uint16_t>(2 * ip_size + 4));
    out.insert(out.end(), src.ip.begin(), src.ip.begin() + static_cast<std::ptrdiff_t>(ip_size));
    out.insert(out.end(), dst.ip.begin(), dst.ip.begin() + static_cast<std::ptrdiff_t>(ip_size));
    append_be16(out, src.port);
    append_be16(out, dst.port);
  } else if (source.family == Family::unix_path && destination.family == Family::unix_path) {
    out.push_back(v2_unix_stream);
    append_be16(out, static_cast<std::uint16_t>(2 * unix_path_field));
    for (const auto* e : {&source, &destination}) {
      // A path of all 108 bytes goes without its NUL, as in sockaddr_un.
      const std::size_t n = std::min(e->path.size(), unix_path_field);
      out.insert(out.end(), e->path.begin(), e->path.begin() + static_cast<std::ptrdiff_t>(n));
      out.insert(out.end(), unix_path_field - n, 0);
    }
  } else {
    out.push_back(v2_unspec);
    append_be16(out, 0);
  }
  return out;
}

}  // namespace portico
