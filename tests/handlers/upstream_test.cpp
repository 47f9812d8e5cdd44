// The proxy handler's upstream addresses: every form it accepts, its
// canonical spelling for the logs, and every error a config can get.

#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "handlers/upstream.hpp"

using portico::handlers::Upstream;

namespace {

Upstream upstream(const std::string& text) {
  auto parsed = portico::handlers::parse_upstream(text);
  INFO(text << ": " << (parsed ? "" : parsed.error().message()));
  REQUIRE(parsed.has_value());
  return *parsed;
}

// The error parse_upstream gives for `text` (empty when it parsed).
std::string error_of(const std::string& text) {
  auto parsed = portico::handlers::parse_upstream(text);
  return parsed ? "" : parsed.error().message();
}

}  // namespace

TEST_CASE("parse_upstream: an IPv4 address and port", "[handlers][proxy][upstream]") {
  const auto u = upstream("10.0.0.5:5432");
  CHECK(u.kind == Upstream::Kind::ip);
  CHECK(u.host == "10.0.0.5");
  CHECK(u.port == 5432);
  CHECK(u.text == "10.0.0.5:5432");
  CHECK(upstream("127.0.0.1:1").port == 1);
  CHECK(upstream("127.0.0.1:65535").port == 65535);
}

TEST_CASE("parse_upstream: an IPv6 address in brackets, spelled canonically", "[handlers][proxy][upstream]") {
  const auto u = upstream("[::1]:80");
  CHECK(u.kind == Upstream::Kind::ip);
  CHECK(u.host == "::1");
  CHECK(u.port == 80);
  CHECK(u.text == "[::1]:80");
  const auto long_form = upstream("[2001:DB8:0:0:0:0:0:1]:443");
  CHECK(long_form.host == "2001:db8::1");
  CHECK(long_form.text == "[2001:db8::1]:443");
}

TEST_CASE("parse_upstream: a Unix socket path", "[handlers][proxy][upstream]") {
  const auto u = upstream("unix:/run/app/app.sock");
  CHECK(u.kind == Upstream::Kind::unix_path);
  CHECK(u.path == "/run/app/app.sock");
  CHECK(u.port == 0);
  CHECK(u.text == "unix:/run/app/app.sock");
}

TEST_CASE("parse_upstream: a host name, resolved at connect time", "[handlers][proxy][upstream]") {
  const auto u = upstream("db.internal:5432");
  CHECK(u.kind == Upstream::Kind::host_name);
  CHECK(u.host == "db.internal");
  CHECK(u.port == 5432);
  CHECK(u.text == "db.internal:5432");
  CHECK(upstream("localhost:80").kind == Upstream::Kind::host_name);
  // Container and service names use '_'; a label may start with a digit.
  CHECK(upstream("my_service:80").host == "my_service");
  CHECK(upstream("1st-db.example.com:80").kind == Upstream::Kind::host_name);
  CHECK(upstream("a-b.c:80").host == "a-b.c");
  CHECK(upstream(std::string(63, 'a') + ".example:80").kind == Upstream::Kind::host_name);
}

TEST_CASE("parse_upstream: a missing port", "[handlers][proxy][upstream]") {
  CHECK(error_of("10.0.0.5") == "invalid upstream \"10.0.0.5\": missing port; expected \"host:port\", "
                                "\"[ipv6]:port\" or \"unix:/path\"");
  CHECK(error_of("db.internal") == "invalid upstream \"db.internal\": missing port; expected \"host:port\", "
                                   "\"[ipv6]:port\" or \"unix:/path\"");
  CHECK(error_of("") ==
        "invalid upstream \"\": missing port; expected \"host:port\", \"[ipv6]:port\" or \"unix:/path\"");
  CHECK(error_of("db:") == "invalid upstream \"db:\": port \"\" is not a number from 1 to 65535");
  CHECK(error_of("10.0.0.5:") == "invalid upstream \"10.0.0.5:\": port \"\" is not a number from 0 to 65535");
}

TEST_CASE("parse_upstream: an IPv6 address without brackets", "[handlers][proxy][upstream]") {
  CHECK(error_of("::1:80") == "invalid upstream \"::1:80\": an IPv6 address needs brackets, e.g. \"[::1]:80\"");
  CHECK(error_of("2001:db8::1:443") ==
        "invalid upstream \"2001:db8::1:443\": an IPv6 address needs brackets, e.g. \"[::1]:80\"");
  CHECK(error_of("[::1]80") ==
        "invalid upstream \"[::1]80\": expected \"a.b.c.d:port\", \"[ipv6]:port\" or \"unix:/path\"");
  CHECK(error_of("[::g]:80") == "invalid upstream \"[::g]:80\": \"::g\" is not an IPv6 address");
}

TEST_CASE("parse_upstream: port 0 and ports beyond 65535", "[handlers][proxy][upstream]") {
  CHECK(error_of("10.0.0.5:0") == "invalid upstream \"10.0.0.5:0\": port 0 cannot be connected to");
  CHECK(error_of("[::1]:0") == "invalid upstream \"[::1]:0\": port 0 cannot be connected to");
  CHECK(error_of("db:0") == "invalid upstream \"db:0\": port 0 cannot be connected to");

  CHECK(error_of("10.0.0.5:65536") ==
        "invalid upstream \"10.0.0.5:65536\": port \"65536\" is not a number from 0 to 65535");
  CHECK(error_of("[::1]:70000") == "invalid upstream \"[::1]:70000\": port \"70000\" is not a number from 0 to 65535");
  CHECK(error_of("db:65536") == "invalid upstream \"db:65536\": port \"65536\" is not a number from 1 to 65535");
  CHECK(error_of("db:-1") == "invalid upstream \"db:-1\": port \"-1\" is not a number from 1 to 65535");
  CHECK(error_of("db:http") == "invalid upstream \"db:http\": port \"http\" is not a number from 1 to 65535");
}

TEST_CASE("parse_upstream: bad IPv4 addresses and host names", "[handlers][proxy][upstream]") {
  // All digits and dots: meant as an IPv4 address, so not taken for a name.
  CHECK(error_of("10.0.0.256:80") == "invalid upstream \"10.0.0.256:80\": \"10.0.0.256\" is not an IPv4 address");
  CHECK(error_of("10.0.5:80") == "invalid upstream \"10.0.5:80\": \"10.0.5\" is not an IPv4 address");
  CHECK(error_of("1.2.3.4.5:80") == "invalid upstream \"1.2.3.4.5:80\": \"1.2.3.4.5\" is not an IPv4 address");

  const auto bad_name = [](const std::string& host) {
    return "invalid upstream \"" + host + ":80\": \"" + host + "\" is neither an IP address nor a valid host name";
  };
  for (const std::string host : {"-db", "db-", "db-.example", "a..b", ".db", "db.", "bad host", "db/x", "db@x", "",
                                 "ex\xc3\xa4mple"}) {
    INFO("\"" << host << "\"");
    CHECK(error_of(host + ":80") == bad_name(host));
  }
  const std::string long_label(64, 'a');
  CHECK(error_of(long_label + ".example:80") == bad_name(long_label + ".example"));
  // 254 characters: over the 253 a name may have.
  std::string long_name;
  while (long_name.size() < 254) long_name += "abcdefghi.";
  long_name.resize(254);
  long_name.back() = 'x';
  CHECK(error_of(long_name + ":80") == bad_name(long_name));
  // The port is checked first.
  CHECK(error_of("-db:99999") == "invalid upstream \"-db:99999\": port \"99999\" is not a number from 1 to 65535");
}

TEST_CASE("parse_upstream: a Unix path must be absolute", "[handlers][proxy][upstream]") {
  CHECK(error_of("unix:") == "invalid upstream \"unix:\": a Unix socket path must be absolute");
  CHECK(error_of("unix:run/app.sock") == "invalid upstream \"unix:run/app.sock\": a Unix socket path must be absolute");
  CHECK(error_of("unix:/" + std::string(120, 'x')) ==
        "invalid upstream \"unix:/" + std::string(120, 'x') + "\": a Unix socket path is at most 107 bytes");
}
