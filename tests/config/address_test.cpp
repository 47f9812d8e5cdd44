#include <catch2/catch.hpp>

#include <portico/address.hpp>

using portico::Address;

TEST_CASE("listen addresses parse into their parts and print canonically", "[config][address]") {
  auto v4 = portico::parse_address("127.0.0.1:8888");
  REQUIRE(v4.has_value());
  CHECK(v4->kind == Address::Kind::ipv4);
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 8888);
  CHECK(v4->to_string() == "127.0.0.1:8888");

  auto v6 = portico::parse_address("[0:0::1]:0");
  REQUIRE(v6.has_value());
  CHECK(v6->kind == Address::Kind::ipv6);
  CHECK(v6->to_string() == "[::1]:0");

  auto unix_socket = portico::parse_address("unix:/run/portico/x.sock");
  REQUIRE(unix_socket.has_value());
  CHECK(unix_socket->kind == Address::Kind::unix_path);
  CHECK(unix_socket->path == "/run/portico/x.sock");
}

TEST_CASE("bad listen addresses say what is wrong", "[config][address]") {
  CHECK(portico::parse_address("127.0.0.1").error().message() == "invalid address \"127.0.0.1\": missing port; expected \"a.b.c.d:port\", \"[ipv6]:port\" or "
                 "\"unix:/path\"");
  CHECK(portico::parse_address("localhost:80").error().message() == "invalid address \"localhost:80\": \"localhost\" is not an IPv4 address (host names are not "
                 "accepted)");
  CHECK(portico::parse_address("::1:80").error().message() == "invalid address \"::1:80\": an IPv6 address needs brackets, e.g. \"[::1]:8888\"");
  CHECK_FALSE(portico::parse_address("[::1]80").has_value());
  CHECK(portico::parse_address("[::g]:80").error().message() == "invalid address \"[::g]:80\": \"::g\" is not an IPv6 address");
  CHECK_FALSE(portico::parse_address("1.2.3.4:65536").has_value());
  CHECK_FALSE(portico::parse_address("1.2.3.4:-1").has_value());
  CHECK(portico::parse_address("unix:relative.sock").error().message() == "invalid address \"unix:relative.sock\": a Unix socket path must be absolute");
  CHECK_FALSE(portico::parse_address("unix:/" + std::string(200, 'x')).has_value());
}
