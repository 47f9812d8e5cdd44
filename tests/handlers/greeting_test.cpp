// The greeting handler, driven through the real porticod over 127.0.0.1.

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;

namespace {

const std::string basic = R"(
[daemon]
log_level = "debug"
[[listener]]
name = "hello"
address = "127.0.0.1:0"
)";

}  // namespace

TEST_CASE("greeting answers a request with exactly the origin's bytes and closes", "[handlers][greeting]") {
  auto d = Daemon::start(basic);
  Client c(d.port());
  REQUIRE(c.send("GET request 1\n"));
  bool closed = false;
  CHECK(c.read_all(5s, &closed) == "Hello from server!\n");
  CHECK(closed);
  // At debug level each connection is logged the way the origin prints it.
  CHECK(d.wait_log("received \"GET request 1\\n\""));
  CHECK(d.wait_log("sending \"Hello from server!\\n\""));
  CHECK(d.wait_log("closing the connection"));
}

TEST_CASE("a silent first client does not delay a second one", "[handlers][greeting]") {
  auto d = Daemon::start(basic);
  Client first(d.port());  // connected, sends nothing yet
  Client second(d.port());
  REQUIRE(second.send("GET request 2\n"));
  const auto started = Clock::now();
  CHECK(second.read_all(2s) == "Hello from server!\n");
  CHECK(Clock::now() - started < 1s);
  // The first is still waiting, and is served when it speaks.
  REQUIRE(first.send("GET request 1\n"));
  CHECK(first.read_all(2s) == "Hello from server!\n");
}

TEST_CASE("greeting reads at most read_limit bytes, once", "[handlers][greeting]") {
  auto d = Daemon::start(basic + "read_limit = 4\n");
  Client c(d.port());
  REQUIRE(c.send("abcdefgh"));
  CHECK(c.read_all(5s) == "Hello from server!\n");
  CHECK(d.wait_log("received \"abcd\""));
}

TEST_CASE("a client that sends nothing is closed after read_timeout and logged", "[handlers][greeting]") {
  auto d = Daemon::start(basic + "read_timeout = \"300ms\"\n");
  Client c(d.port());
  const auto started = Clock::now();
  bool closed = false;
  CHECK(c.read_all(5s, &closed).empty());
  CHECK(closed);
  const auto waited = Clock::now() - started;
  CHECK(waited >= 250ms);
  CHECK(waited < 3s);
  CHECK(d.wait_log("timed out: nothing received within 300ms"));
}

TEST_CASE("a client that shuts down its side still gets the answer", "[handlers][greeting]") {
  auto d = Daemon::start(basic);
  Client c(d.port());
  REQUIRE(c.send("bye"));
  c.shutdown_write();
  CHECK(c.read_all(5s) == "Hello from server!\n");
}

TEST_CASE("on-connect mode sends the message at once as a banner", "[handlers][greeting]") {
  auto d = Daemon::start(basic + "mode = \"on-connect\"\nmessage = \"220 ready\\r\\n\"\n");
  Client c(d.port());
  bool closed = false;
  CHECK(c.read_all(2s, &closed) == "220 ready\r\n");
  CHECK(closed);
}

TEST_CASE("a custom message is sent byte for byte", "[handlers][greeting]") {
  auto d = Daemon::start(basic + "message = \"caf\\u00e9\\u0000end\"\n");
  Client c(d.port());
  REQUIRE(c.send("x"));
  CHECK(c.read_all(5s) == std::string("caf\xc3\xa9\0end", 9));
}
