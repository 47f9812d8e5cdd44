// Stopping porticod: SIGTERM drains, a second signal stops at once.

#include <signal.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;

namespace {

// Connections in flight are silent ones, taken at once (no defer_accept).
const std::string config = R"(
[daemon]
shutdown_timeout = "5s"
[[listener]]
address = "127.0.0.1:0"
defer_accept = "0s"
read_timeout = "30s"
)";

}  // namespace

TEST_CASE("SIGTERM stops accepting but lets a connection in flight complete", "[signals]") {
  auto d = Daemon::start(config);
  Client in_flight(d.port());
  // Make sure the connection was accepted before the signal.
  REQUIRE(d.wait_log("serving"));
  usleep(100'000);
  d.signal(SIGTERM);
  REQUIRE(d.wait_log("received SIGTERM: no longer accepting; waiting up to 5s for 1 connection(s)"));
  // New connections are refused once the listener is closed.
  CHECK(try_connect(d.port()) < 0);
  // The connection in flight is still served.
  REQUIRE(in_flight.send("late request\n"));
  CHECK(in_flight.read_all(5s) == "Hello from server!\n");
  CHECK(d.wait_exit(5s) == 0);
  CHECK_THAT(d.log(), Contains("porticod stopped"));
}

TEST_CASE("SIGTERM with no connections exits 0 at once", "[signals]") {
  auto d = Daemon::start(config);
  d.signal(SIGINT);
  CHECK(d.wait_exit(3s) == 0);
  CHECK_THAT(d.log(), Contains("received SIGINT"));
}

TEST_CASE("connections still open after shutdown_timeout are closed", "[signals]") {
  auto d = Daemon::start(R"(
[daemon]
shutdown_timeout = "300ms"
[[listener]]
address = "127.0.0.1:0"
defer_accept = "0s"
read_timeout = "30s"
)");
  Client silent(d.port());
  usleep(100'000);
  d.signal(SIGTERM);
  CHECK(silent.wait_closed(3s));
  CHECK(d.wait_exit(3s) == 0);
  CHECK_THAT(d.log(), Contains("closing 1 connection(s) still open after the shutdown timeout"));
}

TEST_CASE("a second SIGTERM exits at once without waiting for connections", "[signals]") {
  auto d = Daemon::start(R"(
[daemon]
shutdown_timeout = "60s"
[[listener]]
address = "127.0.0.1:0"
defer_accept = "0s"
read_timeout = "60s"
)");
  Client silent(d.port());
  usleep(100'000);
  d.signal(SIGTERM);
  REQUIRE(d.wait_log("received SIGTERM"));
  d.signal(SIGTERM);
  CHECK(d.wait_exit(3s) == 0);
  CHECK_THAT(d.log(), Contains("received SIGTERM again: exiting now, closing 1 connection(s)"));
}

TEST_CASE("SIGTERM serves a client the kernel held back for defer_accept", "[signals][defer]") {
  // The greeting waits for its client, so the kernel holds a silent client
  // (defer_accept "auto"): it connected before the signal but reaches
  // porticod only when it sends, after the signal.
  auto d = Daemon::start("[daemon]\nshutdown_timeout = \"5s\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n");
  Client c(d.port());
  std::this_thread::sleep_for(100ms);
  d.signal(SIGTERM);
  std::this_thread::sleep_for(100ms);
  REQUIRE(c.send("late request\n"));
  bool closed = false;
  CHECK(c.read_all(5s, &closed) == "Hello from server!\n");
  CHECK(closed);
  CHECK(c.last_error() == 0);
  CHECK(d.wait_exit(5s) == 0);
}

TEST_CASE("SIGTERM serves every client waiting in a paused listener's accept queue", "[signals][limits]") {
  // One connection at a time: the first holds the slot, the others wait in
  // the kernel's queue, their requests already sent.
  auto d = Daemon::start(
      "[daemon]\nshutdown_timeout = \"10s\"\n"
      "[[listener]]\nname = \"one\"\naddress = \"127.0.0.1:0\"\nmax_connections = 1\nread_timeout = \"30s\"\n"
      "defer_accept = \"0s\"\n");
  Client first(d.port());
  REQUIRE(d.wait_log("max_connections (1) reached; pausing accepts"));
  std::vector<Client> queued;
  for (int i = 0; i < 5; ++i) {
    queued.emplace_back(d.port());
    REQUIRE(queued.back().send("queued " + std::to_string(i) + "\n"));
  }
  d.signal(SIGTERM);
  REQUIRE(d.wait_log("received SIGTERM"));
  // The slot stays taken for longer than a deferred client could take to
  // arrive: the queue must still be served once it frees.
  std::this_thread::sleep_for(1500ms);
  REQUIRE(first.send("first\n"));
  CHECK(first.read_all(3s) == "Hello from server!\n");
  for (std::size_t i = 0; i < queued.size(); ++i) {
    INFO("queued client " << i);
    bool closed = false;
    CHECK(queued[i].read_all(3s, &closed) == "Hello from server!\n");
    CHECK(closed);
    CHECK(queued[i].last_error() == 0);
  }
  CHECK(d.wait_exit(5s) == 0);
}

TEST_CASE("without a config file porticod runs the embedded default and says so", "[cli]") {
  if (access("/etc/portico/portico.toml", F_OK) == 0) {
    // The default path is fixed; on a machine with portico installed the
    // embedded default is not what runs. Check what --print-config shows of
    // the embedded text through --check instead.
    WARN("/etc/portico/portico.toml exists: checking the installed file instead of the embedded default");
    CHECK(run_porticod({"--check"}).exit_code == 0);
    return;
  }
  const auto r = run_porticod({"--print-config"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("# effective configuration from <embedded default>"));
  CHECK_THAT(r.out, Contains("address = \"127.0.0.1:8888\"\nhandler = \"greeting\""));
}
