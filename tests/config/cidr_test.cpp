// Address prefixes for allow/deny: what parses, what each error says, and
// what a prefix contains.

#include <optional>
#include <string>

#include <boost/asio/ip/address.hpp>
#include <catch2/catch.hpp>

#include <portico/cidr.hpp>

using portico::IpBytes;

namespace {

IpBytes ip(const std::string& text) {
  const auto parsed = portico::parse_ip(text);
  INFO(text);
  REQUIRE(parsed.has_value());
  return *parsed;
}

portico::Cidr cidr(const std::string& text) {
  auto parsed = portico::parse_cidr(text);
  INFO(text << ": " << (parsed ? std::string() : parsed.error().message()));
  REQUIRE(parsed.has_value());
  return *parsed;
}

// The error parse_cidr gives for `text` (empty when it parsed).
std::string error_of(const std::string& text) {
  const auto parsed = portico::parse_cidr(text);
  if (parsed) return "";
  return parsed.error().message();
}

}  // namespace

TEST_CASE("parse_ip reads IPv4 and IPv6 addresses into bytes", "[config][cidr]") {
  const IpBytes v4 = ip("192.0.2.7");
  CHECK(v4.v4);
  CHECK(v4.bytes == std::array<std::uint8_t, 16>{192, 0, 2, 7});

  const IpBytes v6 = ip("2001:db8::1");
  CHECK_FALSE(v6.v4);
  CHECK(v6.bytes == std::array<std::uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});

  // An IPv4-mapped address is its IPv4 address.
  const IpBytes mapped = ip("::ffff:192.0.2.7");
  CHECK(mapped.v4);
  CHECK(mapped.bytes == v4.bytes);
  // Only ::ffff:0:0/96 is mapped: the deprecated IPv4-compatible form is IPv6.
  CHECK_FALSE(ip("::192.0.2.7").v4);
}

TEST_CASE("parse_ip refuses what is not a numeric address", "[config][cidr]") {
  for (const char* bad : {"", "localhost", "192.0.2", "192.0.2.256", "192.0.2.7:80", "[::1]", "::g", "1.2.3.4 ",
                          "192.0.2.0/24", "fe80::1%1"}) {
    INFO("\"" << bad << "\"");
    CHECK_FALSE(portico::parse_ip(bad).has_value());
  }
}

TEST_CASE("ip_bytes unmaps an IPv4-mapped address and keeps the others", "[config][cidr]") {
  using boost::asio::ip::make_address;
  const IpBytes mapped = portico::ip_bytes(make_address("::ffff:10.1.2.3"));
  CHECK(mapped.v4);
  CHECK(mapped.bytes == std::array<std::uint8_t, 16>{10, 1, 2, 3});
  CHECK(portico::ip_bytes(make_address("10.1.2.3")).bytes == mapped.bytes);
  const IpBytes v6 = portico::ip_bytes(make_address("::1"));
  CHECK_FALSE(v6.v4);
  CHECK(v6.bytes == std::array<std::uint8_t, 16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
}

TEST_CASE("mask keeps the first bits and clears the rest", "[config][cidr]") {
  CHECK(portico::mask(ip("10.1.2.3"), 8).bytes == ip("10.0.0.0").bytes);
  CHECK(portico::mask(ip("10.1.2.3"), 20).bytes == ip("10.1.0.0").bytes);
  CHECK(portico::mask(ip("10.1.2.3"), 23).bytes == ip("10.1.2.0").bytes);
  CHECK(portico::mask(ip("10.1.255.255"), 23).bytes == ip("10.1.254.0").bytes);
  CHECK(portico::mask(ip("10.1.2.3"), 32).bytes == ip("10.1.2.3").bytes);
  CHECK(portico::mask(ip("10.1.2.3"), 0).bytes == ip("0.0.0.0").bytes);
  CHECK(portico::mask(ip("10.1.2.3"), 0).v4);
  CHECK(portico::mask(ip("2001:db8:aaaa:bbbb:1:2:3:4"), 64).bytes == ip("2001:db8:aaaa:bbbb::").bytes);
  CHECK(portico::mask(ip("2001:db8::ffff"), 127).bytes == ip("2001:db8::fffe").bytes);
  CHECK(portico::mask(ip("2001:db8::ffff"), 128).bytes == ip("2001:db8::ffff").bytes);
  CHECK(portico::mask(ip("2001:db8::ffff"), 0).bytes == ip("::").bytes);
  CHECK_FALSE(portico::mask(ip("2001:db8::ffff"), 0).v4);
}

TEST_CASE("parse_cidr reads prefixes and single addresses", "[config][cidr]") {
  const auto net = cidr("10.0.0.0/8");
  CHECK(net.prefix == 8);
  CHECK(net.text == "10.0.0.0/8");
  CHECK(net.network.v4);
  CHECK(net.network.bytes == ip("10.0.0.0").bytes);

  const auto host = cidr("192.0.2.7");
  CHECK(host.prefix == 32);
  CHECK(host.text == "192.0.2.7");
  const auto host6 = cidr("::1");
  CHECK(host6.prefix == 128);
  CHECK_FALSE(host6.network.v4);

  CHECK(cidr("192.0.2.7/32").prefix == 32);
  CHECK(cidr("2001:db8::1/128").prefix == 128);
  CHECK(cidr("0.0.0.0/0").prefix == 0);
  CHECK(cidr("::/0").prefix == 0);
  CHECK(cidr("2001:db8::/32").prefix == 32);
}

TEST_CASE("an IPv4-mapped prefix is the IPv4 prefix it maps", "[config][cidr]") {
  const auto mapped = cidr("::ffff:10.0.0.0/104");
  CHECK(mapped.network.v4);
  CHECK(mapped.prefix == 8);
  CHECK(mapped.network.bytes == ip("10.0.0.0").bytes);
  CHECK(mapped.text == "::ffff:10.0.0.0/104");
  CHECK(mapped.contains(ip("10.200.0.1")));
  CHECK_FALSE(mapped.contains(ip("11.0.0.1")));

  const auto single = cidr("::ffff:192.0.2.7");
  CHECK(single.network.v4);
  CHECK(single.prefix == 32);
  CHECK(cidr("::ffff:0.0.0.0/96").prefix == 0);
}

TEST_CASE("parse_cidr's errors name the text and say what is wrong", "[config][cidr]") {
  CHECK(error_of("10.0.0/8") == "invalid address prefix \"10.0.0/8\": \"10.0.0\" is not an IPv4 or IPv6 address");
  CHECK(error_of("example.com") ==
        "invalid address prefix \"example.com\": \"example.com\" is not an IPv4 or IPv6 address");
  CHECK(error_of("") == "invalid address prefix \"\": \"\" is not an IPv4 or IPv6 address");
  CHECK(error_of("/8") == "invalid address prefix \"/8\": \"\" is not an IPv4 or IPv6 address");
  CHECK(error_of("fe80::/10%1") ==
        "invalid address prefix \"fe80::/10%1\": the length after \"/\" must be from 0 to 128");
  CHECK(error_of("fe80::1%1") == "invalid address prefix \"fe80::1%1\": \"fe80::1%1\" is not an IPv4 or IPv6 address");

  for (const char* bad_length : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1", "10.0.0.0/ 8",
                                 "10.0.0.0/8/8", "10.0.0.0/99999999999"}) {
    INFO(bad_length);
    CHECK(error_of(bad_length) ==
          "invalid address prefix \"" + std::string(bad_length) + "\": the length after \"/\" must be from 0 to 32");
  }
  CHECK(error_of("2001:db8::/129") ==
        "invalid address prefix \"2001:db8::/129\": the length after \"/\" must be from 0 to 128");
  CHECK(error_of("::ffff:10.0.0.0/129") ==
        "invalid address prefix \"::ffff:10.0.0.0/129\": the length after \"/\" must be from 0 to 128");

  CHECK(error_of("10.0.0.1/8") == "invalid address prefix \"10.0.0.1/8\": host bits are set after /8");
  CHECK(error_of("1.0.0.0/0") == "invalid address prefix \"1.0.0.0/0\": host bits are set after /0");
  CHECK(error_of("192.0.2.1/31") == "invalid address prefix \"192.0.2.1/31\": host bits are set after /31");
  CHECK(error_of("2001:db8::1/64") == "invalid address prefix \"2001:db8::1/64\": host bits are set after /64");
  CHECK(error_of("::1/0") == "invalid address prefix \"::1/0\": host bits are set after /0");

  CHECK(error_of("::ffff:10.0.0.0/95") ==
        "invalid address prefix \"::ffff:10.0.0.0/95\": an IPv4-mapped prefix must be at least /96");
  // The mapped prefix is checked as the IPv4 prefix it stands for.
  CHECK(error_of("::ffff:10.0.0.1/104") ==
        "invalid address prefix \"::ffff:10.0.0.1/104\": host bits are set after /8");
}

TEST_CASE("Cidr::contains matches addresses of its own family only", "[config][cidr]") {
  const auto ten = cidr("10.0.0.0/8");
  CHECK(ten.contains(ip("10.0.0.0")));
  CHECK(ten.contains(ip("10.255.255.255")));
  CHECK(ten.contains(ip("::ffff:10.1.1.1")));
  CHECK_FALSE(ten.contains(ip("11.0.0.0")));
  CHECK_FALSE(ten.contains(ip("9.255.255.255")));
  // IPv6 addresses whose first bytes look like 10/8 are not in it.
  CHECK_FALSE(ten.contains(ip("a00::1")));

  const auto host = cidr("192.0.2.7/32");
  CHECK(host.contains(ip("192.0.2.7")));
  CHECK_FALSE(host.contains(ip("192.0.2.6")));
  CHECK_FALSE(host.contains(ip("192.0.2.8")));

  const auto all4 = cidr("0.0.0.0/0");
  CHECK(all4.contains(ip("255.255.255.255")));
  CHECK(all4.contains(ip("0.0.0.0")));
  CHECK_FALSE(all4.contains(ip("::1")));

  const auto all6 = cidr("::/0");
  CHECK(all6.contains(ip("::1")));
  CHECK(all6.contains(ip("ffff::1")));
  CHECK_FALSE(all6.contains(ip("127.0.0.1")));
  CHECK_FALSE(all6.contains(ip("::ffff:127.0.0.1")));

  const auto doc = cidr("2001:db8::/32");
  CHECK(doc.contains(ip("2001:db8:ffff::1")));
  CHECK_FALSE(doc.contains(ip("2001:db9::1")));

  const auto loop6 = cidr("::1/128");
  CHECK(loop6.contains(ip("::1")));
  CHECK_FALSE(loop6.contains(ip("::2")));
  CHECK_FALSE(loop6.contains(ip("0.0.0.1")));
}
