// The discard handler (RFC 863), driven through the real porticod over
// 127.0.0.1.

#include <catch2/catch.hpp>

#include "handlers/service_support.hpp"
#include "support/daemon.hpp"

using namespace portico::test;

TEST_CASE("discard sends nothing back and closes after the client's EOF", "[handlers][discard]") {
  auto d = Daemon::start(service_config("discard"));
  Client c(d.port());
  REQUIRE(c.send("hello\r\n"));
  REQUIRE(c.send(std::string(256 * 1024, 'x')));
  c.shutdown_write();
  bool closed = false;
  CHECK(c.read_all(5s, &closed).empty());
  CHECK(closed);
  CHECK(d.wait_log("client closed its side; discarded 262151 bytes"));
}

TEST_CASE("discard keeps the connection open until the client closes", "[handlers][discard]") {
  auto d = Daemon::start(service_config("discard"));
  Client c(d.port());
  REQUIRE(c.send("some bytes"));
  bool closed = true;
  CHECK(c.read_all(300ms, &closed).empty());
  CHECK_FALSE(closed);
  // Still reading: more is accepted, and the EOF still ends it.
  REQUIRE(c.send("more"));
  c.shutdown_write();
  CHECK(c.wait_closed(5s));
  CHECK(d.wait_log("discarded 14 bytes"));
}
