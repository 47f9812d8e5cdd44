// The command-line value syntaxes.

#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <vector>

#include "parse.hpp"

using namespace std::chrono_literals;
using bench::Nanos;

TEST_CASE("durations", "[parse]") {
  std::string error;
  CHECK(bench::parse_duration("250ms", error) == Nanos(250ms));
  CHECK(bench::parse_duration("5s", error) == Nanos(5s));
  CHECK(bench::parse_duration("2m", error) == Nanos(2min));
  CHECK(bench::parse_duration("1h", error) == Nanos(1h));
  CHECK(bench::parse_duration("1.5s", error) == Nanos(1500ms));
  CHECK(bench::parse_duration("0", error) == Nanos(0));
  CHECK(bench::parse_duration("0s", error) == Nanos(0));
  for (const char* bad : {"", "5", "s", "-1s", "5x", "5 s", "1e3s"}) {
    INFO(bad);
    CHECK_FALSE(bench::parse_duration(bad, error));
  }
}

TEST_CASE("sizes", "[parse]") {
  std::string error;
  CHECK(bench::parse_size("1024", error) == 1024u);
  CHECK(bench::parse_size("64k", error) == 65536u);
  CHECK(bench::parse_size("1KiB", error) == 1024u);
  CHECK(bench::parse_size("2m", error) == 2u * 1024 * 1024);
  for (const char* bad : {"", "k", "1g", "-5", "1.5k"}) {
    INFO(bad);
    CHECK_FALSE(bench::parse_size(bad, error));
  }
}

TEST_CASE("escapes", "[parse]") {
  std::string error;
  CHECK(bench::unescape("Hello from server!\\n", error) == std::string("Hello from server!\n"));
  CHECK(bench::unescape("a\\tb\\r\\n\\\\", error) == std::string("a\tb\r\n\\"));
  CHECK(bench::unescape("\\x41\\x00", error) == std::string("A\0", 2));
  CHECK(bench::unescape("", error) == std::string());
  CHECK_FALSE(bench::unescape("oops\\", error));
  CHECK_FALSE(bench::unescape("\\q", error));
  CHECK_FALSE(bench::unescape("\\x4", error));
  CHECK_FALSE(bench::unescape("\\xzz", error));
  CHECK(bench::escape("Hi\n\x01") == "Hi\\n\\x01");
}

TEST_CASE("source ranges", "[parse]") {
  std::string error;
  auto r = bench::parse_source_range("127.0.0.1-127.0.0.254", error);
  REQUIRE(r);
  CHECK(r->family == AF_INET);
  CHECK(r->size() == 254);
  CHECK(r->first == 0x7f000001u);
  r = bench::parse_source_range("127.0.0.9", error);
  REQUIRE(r);
  CHECK(r->size() == 1);
  r = bench::parse_source_range("::1", error);
  REQUIRE(r);
  CHECK(r->family == AF_INET6);
  CHECK_FALSE(bench::parse_source_range("127.0.0.9-127.0.0.1", error));
  CHECK_FALSE(bench::parse_source_range("127.0.0.1-", error));
  CHECK_FALSE(bench::parse_source_range("localhost", error));
}

TEST_CASE("process id lists", "[parse]") {
  std::string error;
  CHECK(bench::parse_pid_list("1234", error) == std::vector<int>{1234});
  CHECK(bench::parse_pid_list("1234,1240,7", error) == std::vector<int>{1234, 1240, 7});
  for (const char* bad : {"", ",", "12,", ",12", "0", "-3", "12 ,13", "abc", "1x", "99999999999"}) {
    INFO(bad);
    CHECK_FALSE(bench::parse_pid_list(bad, error));
  }
  // Counted twice, a process's CPU time would be too.
  CHECK_FALSE(bench::parse_pid_list("12,13,12", error));
  CHECK(error == "process id 12 is given twice");
}
