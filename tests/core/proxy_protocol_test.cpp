// The PROXY protocol builder and incremental parser, on bytes only.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <portico/proxy_protocol.hpp>

using portico::build_proxy_v1;
using portico::build_proxy_v2;
using portico::parse_proxy_header;
using portico::ProxyCommand;
using portico::ProxyEndpoint;
using portico::ProxyParseResult;
using portico::ProxyParseStatus;
using Family = ProxyEndpoint::Family;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

ProxyParseResult parse(const Bytes& data) { return parse_proxy_header(data); }

const Bytes v2_signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// A v2 header: signature, version/command, family, then `body` with its length.
Bytes v2(std::uint8_t ver_cmd, std::uint8_t family, const Bytes& body) {
  Bytes out = v2_signature;
  out.push_back(ver_cmd);
  out.push_back(family);
  out.push_back(static_cast<std::uint8_t>(body.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(body.size() & 0xff));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

ProxyEndpoint v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port) {
  return ProxyEndpoint::ipv4({a, b, c, d}, port);
}

ProxyEndpoint v6_loopback(std::uint16_t port) {
  std::array<std::uint8_t, 16> ip{};
  ip[15] = 1;
  return ProxyEndpoint::ipv6(ip, port);
}

// Every proper prefix of a complete header asks for more; the whole parses.
ProxyParseResult parse_byte_by_byte(const Bytes& header) {
  for (std::size_t n = 0; n < header.size(); ++n) {
    const auto r = parse_proxy_header(std::span(header.data(), n));
    INFO("prefix of " << n << " bytes: " << r.error);
    REQUIRE(r.status == ProxyParseStatus::need_more);
  }
  return parse(header);
}

}  // namespace

TEST_CASE("v1 TCP4 parses both endpoints and leaves the client's bytes", "[proxy_protocol]") {
  const std::string line = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
  const auto r = parse(bytes(line + "GET / HTTP/1.0\r\n"));
  REQUIRE(r.status == ProxyParseStatus::done);
  CHECK(r.header_length == line.size());
  CHECK(r.header.version == 1);
  CHECK(r.header.command == ProxyCommand::proxy);
  CHECK(r.header.source == v4(192, 0, 2, 1, 56324));
  CHECK(r.header.destination == v4(198, 51, 100, 2, 443));
  CHECK(r.header.source.to_string() == "192.0.2.1:56324");
}

TEST_CASE("v1 TCP6 parses IPv6 endpoints", "[proxy_protocol]") {
  const auto r = parse_byte_by_byte(bytes("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n"));
  REQUIRE(r.status == ProxyParseStatus::done);
  CHECK(r.header.source.family == Family::ipv6);
  CHECK(r.header.source.to_string() == "[2001:db8::1]:65535");
  CHECK(r.header.destination == v6_loopback(0));
}

TEST_CASE("v1 UNKNOWN carries no addresses, whatever follows it", "[proxy_protocol]") {
  for (const std::string line : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
    const auto r = parse_byte_by_byte(bytes(line));
    REQUIRE(r.status == ProxyParseStatus::done);
    CHECK(r.header_length == line.size());
    CHECK_FALSE(r.header.has_addresses());
    CHECK(r.header.source.to_string() == "unknown");
  }
}

TEST_CASE("v1 is accepted up to 107 bytes and refused beyond", "[proxy_protocol]") {
  const std::string longest = "PROXY UNKNOWN " + std::string(107 - 16, 'x') + "\r\n";
  REQUIRE(longest.size() == 107);
  CHECK(parse(bytes(longest)).status == ProxyParseStatus::done);
  const std::string too_long = "PROXY UNKNOWN " + std::string(107 - 15, 'x') + "\r\n";
  const auto r = parse(bytes(too_long.substr(0, 107)));
  CHECK(r.status == ProxyParseStatus::invalid);
  CHECK(r.error == "v1 header is longer than 107 bytes");
}

TEST_CASE("malformed v1 lines are refused with a reason", "[proxy_protocol]") {
  const auto check_invalid = [](const std::string& line, const std::string& why) {
    INFO(line);
    const auto r = parse(bytes(line));
    CHECK(r.status == ProxyParseStatus::invalid);
    CHECK(r.error == why);
  };
  check_invalid("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n", "v1 header must end with CR LF");
  check_invalid("PROXY TCP4 192.0.2.1\r198.51.100.2", "v1 header has a CR not followed by LF");
  check_invalid("PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n", "v1 header names an unknown protocol \"UDP4\"");
  check_invalid("PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n",
                "v1 header needs 4 single-space-separated fields after TCP4");
  check_invalid("PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n", "v1 header needs 4 single-space-separated fields after TCP4");
  check_invalid("PROXY TCP4 ::1 ::1 1 2\r\n", "v1 header has an invalid TCP4 address or port");
  check_invalid("PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n", "v1 header has an invalid TCP6 address or port");
  check_invalid("PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n", "v1 header has an invalid TCP4 address or port");
  check_invalid("PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n", "v1 header has an invalid TCP4 address or port");
  check_invalid("PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n", "v1 header has an invalid TCP4 address or port");
  check_invalid("PROXY TCP4 192.0.2.1 198.51.100.2 1 2x\r\n", "v1 header has an invalid TCP4 address or port");
  check_invalid("PROXY \r\n", "v1 header names an unknown protocol \"\"");
  check_invalid("proxy TCP4", "not a PROXY protocol header");
}

TEST_CASE("garbage is refused as soon as it cannot be a header", "[proxy_protocol]") {
  CHECK(parse({}).status == ProxyParseStatus::need_more);
  CHECK(parse(bytes("P")).status == ProxyParseStatus::need_more);
  CHECK(parse(bytes("PROX")).status == ProxyParseStatus::need_more);
  CHECK(parse(bytes("G")).status == ProxyParseStatus::invalid);
  CHECK(parse(bytes("GET / HTTP/1.1\r\n")).error == "not a PROXY protocol header");
  CHECK(parse(bytes("PROXY TCP4 \x01")).error == "v1 header contains a byte that is not printable ASCII");
  CHECK(parse(bytes("PROXY TCP4 1.2.3.4\xff")).status == ProxyParseStatus::invalid);
  CHECK(parse(bytes("\r\n\r\n")).status == ProxyParseStatus::need_more);
  CHECK(parse(bytes("\r\n\r\nQUIT")).error == "not a PROXY protocol header");
  CHECK(parse({0x16, 0x03, 0x01}).status == ProxyParseStatus::invalid);  // a TLS ClientHello
}

TEST_CASE("v2 PROXY over IPv4 parses addresses and skips TLVs", "[proxy_protocol]") {
  const Bytes addresses = {192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb};
  // An ALPN TLV ("h2") and an empty NOOP TLV.
  const Bytes tlvs = {0x01, 0x00, 0x02, 'h', '2', 0x04, 0x00, 0x00};
  const Bytes header = v2(0x21, 0x11, concat(addresses, tlvs));
  const auto r = parse_byte_by_byte(header);
  REQUIRE(r.status == ProxyParseStatus::done);
  CHECK(r.header_length == header.size());
  CHECK(r.header.version == 2);
  CHECK(r.header.command == ProxyCommand::proxy);
  CHECK(r.header.source == v4(192, 0, 2, 1, 56324));
  CHECK(r.header.destination == v4(198, 51, 100, 2, 443));
  // The client's bytes that follow are not part of it.
  CHECK(parse(concat(header, bytes("hello"))).header_length == header.size());
}

TEST_CASE("v2 PROXY over IPv6 and over Unix sockets", "[proxy_protocol]") {
  Bytes six(36, 0);
  six[15] = 1;  // source ::1, destination 2001:db8::2, ports 12345 and 80
  for (auto [i, v] : {std::pair{16, 0x20}, {17, 0x01}, {18, 0x0d}, {19, 0xb8}, {31, 0x02}, {32, 0x30}, {33, 0x39},
                      {35, 0x50}}) {
    six[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
  }
  auto r = parse_byte_by_byte(v2(0x21, 0x21, six));
  REQUIRE(r.status == ProxyParseStatus::done);
  CHECK(r.header.source == v6_loopback(12345));
  CHECK(r.header.destination.to_string() == "[2001:db8::2]:80");

  Bytes paths(216, 0);
  const std::string src = "/run/client.sock";
  const std::string dst(108, 'd');  // a full field has no NUL
  std::copy(src.begin(), src.end(), paths.begin());
  std::copy(dst.begin(), dst.end(), paths.begin() + 108);
  r = parse(v2(0x21, 0x31, paths));
  REQUIRE(r.status == ProxyParseStatus::done);
  CHECK(r.header.source == ProxyEndpoint::unix_socket(src));
  CHECK(r.header.destination.path == dst);
}

TEST_CASE("v2 LOCAL and AF_UNSPEC carry no addresses", "[proxy_protocol]") {
  // LOCAL ignores whatever block it has, even one claiming a family.
  auto r = parse(v2(0x20, 0x11, Bytes(12, 7)));
  REQUIRE(r.status == ProxyParseStatus::done);
  CHECK(r.header.command == ProxyCommand::local);
  CHECK_FALSE(r.header.has_addresses());
  CHECK(r.header_length == 28);

  r = parse(v2(0x21, 0x00, {}));
  REQUIRE(r.status == ProxyParseStatus::done);
  CHECK(r.header.command == ProxyCommand::proxy);
  CHECK_FALSE(r.header.has_addresses());
}

TEST_CASE("malformed v2 headers are refused with a reason", "[proxy_protocol]") {
  const auto check_invalid = [](const Bytes& data, const std::string& why) {
    const auto r = parse(data);
    CHECK(r.status == ProxyParseStatus::invalid);
    CHECK(r.error == why);
  };
  const Bytes four(12, 1);
  check_invalid(v2(0x11, 0x11, four), "v2 header has unsupported version 1");
  check_invalid(v2(0x22, 0x11, four), "v2 header has unknown command 2");
  check_invalid(v2(0x21, 0x12, four), "v2 header describes a datagram connection, not a stream");
  check_invalid(v2(0x21, 0x41, four), "v2 header has unknown address family 65");
  check_invalid(v2(0x21, 0x21, four), "v2 header is too short for its address family");
  check_invalid(v2(0x21, 0x11, concat(four, {0x01, 0x00})), "v2 header has a truncated TLV");
  check_invalid(v2(0x21, 0x11, concat(four, {0x01, 0x00, 0x05, 'a'})), "v2 header has a TLV longer than the header");
}

TEST_CASE("an oversized v2 header is refused from its fixed part alone", "[proxy_protocol]") {
  Bytes head = v2_signature;
  head.insert(head.end(), {0x21, 0x11, 0x10, 0x00});  // 4096 bytes of addresses and TLVs
  const auto r = parse(head);
  CHECK(r.status == ProxyParseStatus::invalid);
  CHECK(r.error == "v2 header is 4112 bytes, more than the 4096 accepted");
  // The largest accepted: 16 + 4080.
  Bytes body(4080, 0);
  // After the 12 address bytes, one NOOP TLV filling the rest (4065 bytes).
  body[12] = 0x04;
  body[13] = 0x0f;
  body[14] = 0xe1;
  CHECK(parse(v2(0x21, 0x11, body)).status == ProxyParseStatus::done);
}

TEST_CASE("v2 fixed bytes are checked as they arrive", "[proxy_protocol]") {
  Bytes head = v2_signature;
  head.push_back(0x31);  // version 3
  CHECK(parse(head).status == ProxyParseStatus::invalid);
  head.back() = 0x21;
  CHECK(parse(head).status == ProxyParseStatus::need_more);
  head.push_back(0x12);  // UDP
  CHECK(parse(head).status == ProxyParseStatus::invalid);
}

TEST_CASE("build_proxy_v1 writes the canonical line", "[proxy_protocol]") {
  const auto line = [](const Bytes& b) { return std::string(b.begin(), b.end()); };
  CHECK(line(build_proxy_v1(v4(192, 0, 2, 1, 56324), v4(198, 51, 100, 2, 443))) ==
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
  CHECK(line(build_proxy_v1(v6_loopback(1), v6_loopback(2))) == "PROXY TCP6 ::1 ::1 1 2\r\n");
  // Mixed families: the IPv4 end is mapped into IPv6.
  CHECK(line(build_proxy_v1(v4(192, 0, 2, 1, 1), v6_loopback(2))) == "PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n");
  CHECK(line(build_proxy_v1(ProxyEndpoint::unix_socket("/a"), ProxyEndpoint::unix_socket("/b"))) ==
        "PROXY UNKNOWN\r\n");
  CHECK(line(build_proxy_v1({}, v4(1, 2, 3, 4, 5))) == "PROXY UNKNOWN\r\n");
}

TEST_CASE("build_proxy_v2 writes the binary header byte for byte", "[proxy_protocol]") {
  const Bytes expected = concat(v2_signature, {0x21, 0x11, 0x00, 0x0c, 192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04,
                                               0x01, 0xbb});
  CHECK(build_proxy_v2(v4(192, 0, 2, 1, 56324), v4(198, 51, 100, 2, 443)) == expected);
  CHECK(build_proxy_v2({}, {}, ProxyCommand::local) == concat(v2_signature, {0x20, 0x00, 0x00, 0x00}));
  CHECK(build_proxy_v2({}, v4(1, 2, 3, 4, 5)) == concat(v2_signature, {0x21, 0x00, 0x00, 0x00}));
}

TEST_CASE("every built header parses back to the same endpoints", "[proxy_protocol]") {
  const std::vector<std::pair<ProxyEndpoint, ProxyEndpoint>> cases = {
      {v4(10, 0, 0, 1, 40000), v4(10, 0, 0, 2, 5432)},
      {v6_loopback(1), v6_loopback(65535)},
      {ProxyEndpoint::unix_socket("/run/a.sock"), ProxyEndpoint::unix_socket("")},
  };
  for (const auto& [src, dst] : cases) {
    INFO(src.to_string() << " -> " << dst.to_string());
    const auto r2 = parse_byte_by_byte(build_proxy_v2(src, dst));
    REQUIRE(r2.status == ProxyParseStatus::done);
    CHECK(r2.header.source == src);
    CHECK(r2.header.destination == dst);
    const auto r1 = parse_byte_by_byte(build_proxy_v1(src, dst));
    REQUIRE(r1.status == ProxyParseStatus::done);
    if (src.is_ip()) {
      CHECK(r1.header.source == src);
      CHECK(r1.header.destination == dst);
    } else {
      CHECK_FALSE(r1.header.has_addresses());  // v1 cannot say "unix"
    }
  }
  const auto local = parse(build_proxy_v2(v4(1, 1, 1, 1, 1), v4(2, 2, 2, 2, 2), ProxyCommand::local));
  CHECK(local.header.command == ProxyCommand::local);
}
