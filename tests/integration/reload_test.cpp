// SIGHUP reloads: no connection refused or reset, the reply changes exactly
// when the reload is applied, and a broken config changes nothing.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;

namespace {

std::string config_with(int generation, bool extra_listener) {
  std::string text = "[daemon]\nshutdown_timeout = \"2s\"\n"
                     "[[listener]]\nname = \"main\"\naddress = \"127.0.0.1:0\"\n"
                     "message = \"generation " + std::to_string(generation) + "\\n\"\n";
  if (extra_listener) text += "[[listener]]\nname = \"extra\"\naddress = \"127.0.0.1:0\"\nmode = \"on-connect\"\n";
  return text;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Waits until `what` appears `times` times in the daemon's log.
bool wait_count(const Daemon& d, const std::string& what, std::size_t times, Millis timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (count(d.log(), what) >= times) return true;
    std::this_thread::sleep_for(2ms);
  }
  return false;
}

std::string ask(std::uint16_t port) {
  Client c(port);
  c.send("hi\n");
  return c.read_all(3s);
}

std::string ask_echo(std::uint16_t port) {
  Client c(port);
  c.send("again\n");
  return c.read_exactly(6, 3s);
}

}  // namespace

TEST_CASE("50 reloads under a hammering client: nothing refused or reset, replies switch with each reload",
          "[reload]") {
  auto d = Daemon::start(config_with(0, false));
  const std::uint16_t port = d.port("main");

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> served{0};
  std::atomic<int> went_back{0};
  std::thread hammer([&] {
    int last = 0;
    while (!stop) {
      try {
        Client client(port);
        client.send("hi\n");
        bool closed = false;
        const std::string reply = client.read_all(3s, &closed);
        if (!closed || client.last_error() != 0 || !reply.starts_with("generation ")) {
          ++failures;
          continue;
        }
        const int generation = std::stoi(reply.substr(11));
        // Connections are made one after another, so generations never go back.
        if (generation < last) ++went_back;
        last = generation;
        ++served;
      } catch (const std::exception&) {
        ++failures;
      }
    }
  });

  for (int i = 1; i <= 50; ++i) {
    const bool extra = i % 2 == 1;
    d.rewrite_config(config_with(i, extra));
    CHECK(ask(port) == "generation " + std::to_string(i - 1) + "\n");
    d.signal(SIGHUP);
    REQUIRE(wait_count(d, "reload complete", static_cast<std::size_t>(i)));
    // Applied: the very next connection gets the new reply.
    CHECK(ask(port) == "generation " + std::to_string(i) + "\n");
  }
  stop = true;
  hammer.join();
  CHECK(failures == 0);
  CHECK(went_back == 0);
  CHECK(served > 50);
  CHECK_THAT(d.log(), Contains("reload complete: 1 listener(s) kept, 1 added, 0 removed"));
  CHECK_THAT(d.log(), Contains("reload complete: 1 listener(s) kept, 0 added, 1 removed"));
}

TEST_CASE("a reload with a broken config logs every error and keeps serving as before", "[reload]") {
  auto d = Daemon::start(config_with(1, false));
  d.rewrite_config("[daemon]\nlog_levle = \"info\"\n[[listener]]\naddress = \"127.0.0.1:0\"\nread_limit = \"x\"\n");
  d.signal(SIGHUP);
  REQUIRE(d.wait_log("reload failed: 2 error(s); still serving the previous configuration"));
  CHECK_THAT(d.log(), Contains(d.config_path() + ":2:1: unknown key \"log_levle\" in [daemon]"));
  CHECK_THAT(d.log(), Contains(d.config_path() + ":5:14: \"read_limit\" in listener #1 must be an integer"));
  CHECK(ask(d.port("main")) == "generation 1\n");
}

TEST_CASE("a reload of a file with thousands of duplicates goes on serving a client while it is read", "[reload]") {
  auto d = Daemon::start("[[listener]]\nname = \"echo\"\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\n");
  Client client(d.port("echo"));
  REQUIRE(client.send("before\n"));
  REQUIRE(client.read_exactly(7) == "before\n");

  std::string text;
  for (int i = 0; i < 3000; ++i) text += "[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:1\"\nhandler = \"echo\"\n";
  d.rewrite_config(text);
  d.signal(SIGHUP);
  // The client is answered all along: each echo within 2 s, a bound that a
  // loop busy with the reload (10 s before) misses and a serving one meets
  // with a wide margin.
  int echoes = 0;
  const auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline) {
    const bool done = d.log().find("reload failed:") != std::string::npos;
    REQUIRE(client.send("ping\n"));
    REQUIRE(client.read_exactly(5, 2s) == "ping\n");
    ++echoes;
    if (done) break;
    std::this_thread::sleep_for(20ms);
  }
  CHECK(echoes > 0);
  REQUIRE(d.wait_log("reload failed: 5998 error(s); still serving the previous configuration", 1s));
  const std::string log = d.log();
  CHECK_THAT(log, Contains(d.config_path() + ":5:1: duplicate listener name \"x\" (first used at 1:1)"));
  CHECK_THAT(log, Contains(d.config_path() + ": ... and 5898 more errors (only the first 100 are shown)"));
  CHECK(count(log, "duplicate ") == 100);
  CHECK(ask_echo(d.port("echo")) == "again\n");
}

TEST_CASE("a reload whose new listener cannot bind changes nothing", "[reload]") {
  auto d = Daemon::start(config_with(1, false));
  auto other = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\n");
  const std::string taken = "127.0.0.1:" + std::to_string(other.port());
  d.rewrite_config(config_with(2, false) + "[[listener]]\nname = \"clash\"\naddress = \"" + taken + "\"\n");
  d.signal(SIGHUP);
  REQUIRE(d.wait_log("reload failed: listener \"clash\": cannot bind to " + taken + ": Address already in use"));
  // Not even the message change was applied.
  CHECK(ask(d.port("main")) == "generation 1\n");
}

TEST_CASE("a removed listener stops accepting and lets its connection finish", "[reload]") {
  auto d = Daemon::start(config_with(1, true), {.listeners = 2});
  const auto extra_port = d.port("extra");
  std::string extra_config = config_with(1, false);
  // Make the extra listener wait for input, so a connection stays in flight
  // (taken at once, without defer_accept).
  d.rewrite_config(config_with(1, false) + "[[listener]]\nname = \"extra\"\naddress = \"127.0.0.1:0\"\n"
                                           "defer_accept = \"0s\"\nread_timeout = \"30s\"\n");
  d.signal(SIGHUP);
  REQUIRE(d.wait_log("reload complete"));
  Client in_flight(extra_port);
  std::this_thread::sleep_for(100ms);
  d.rewrite_config(extra_config);
  d.signal(SIGHUP);
  REQUIRE(d.wait_log("listener \"extra\" on 127.0.0.1:" + std::to_string(extra_port) +
                     " removed: draining 1 connection(s)"));
  CHECK(try_connect(extra_port) < 0);
  in_flight.send("last words\n");
  CHECK(in_flight.read_all(3s) == "Hello from server!\n");
}

TEST_CASE("a removed listener serves a client the kernel held back for defer_accept", "[reload][defer]") {
  const std::string kept = "[daemon]\nshutdown_timeout = \"5s\"\n"
                           "[[listener]]\nname = \"main\"\naddress = \"127.0.0.1:0\"\n";
  // The greeting waits for its client: the kernel holds a silent one.
  auto d = Daemon::start(kept + "[[listener]]\nname = \"gone\"\naddress = \"127.0.0.1:0\"\n", {.listeners = 2});
  const auto gone_port = d.port("gone");
  Client c(gone_port);
  std::this_thread::sleep_for(100ms);
  d.rewrite_config(kept);
  d.signal(SIGHUP);
  REQUIRE(d.wait_log("reload complete"));
  REQUIRE(c.send("late request\n"));
  bool closed = false;
  CHECK(c.read_all(5s, &closed) == "Hello from server!\n");
  CHECK(closed);
  CHECK(c.last_error() == 0);
}

TEST_CASE("a removed listener serves the clients waiting in its accept queue", "[reload][limits]") {
  const std::string kept = "[daemon]\nshutdown_timeout = \"10s\"\n"
                           "[[listener]]\nname = \"main\"\naddress = \"127.0.0.1:0\"\n";
  // One connection at a time: the first holds the slot, the others wait in
  // the kernel's queue, their requests already sent.
  auto d = Daemon::start(kept + "[[listener]]\nname = \"gone\"\naddress = \"127.0.0.1:0\"\nmax_connections = 1\n"
                                "read_timeout = \"30s\"\ndefer_accept = \"0s\"\n",
                         {.listeners = 2});
  const auto gone_port = d.port("gone");
  Client first(gone_port);
  REQUIRE(d.wait_log("max_connections (1) reached; pausing accepts"));
  std::vector<Client> queued;
  for (int i = 0; i < 3; ++i) {
    queued.emplace_back(gone_port);
    REQUIRE(queued.back().send("queued " + std::to_string(i) + "\n"));
  }
  d.rewrite_config(kept);
  d.signal(SIGHUP);
  REQUIRE(d.wait_log("reload complete"));
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
  // Then the listener is gone for good: it closes its socket once it took
  // the last client, a moment after that client may have its answer.
  bool refused = false;
  for (const auto until = Clock::now() + 2s; !refused && Clock::now() < until;) {
    const int fd = try_connect(gone_port);
    refused = fd < 0;
    if (fd >= 0) {
      close(fd);
      std::this_thread::sleep_for(10ms);
    }
  }
  CHECK(refused);
}

TEST_CASE("a reload that makes the client speak first defers accepts, and one that makes the server speak first stops",
          "[reload]") {
  const std::string banner = "[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:0\"\nmode = \"on-connect\"\n";
  const std::string after_read = "[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:0\"\nread_timeout = \"300ms\"\n";
  auto d = Daemon::start(banner);
  // How long a client that sends nothing waits until the connection ends.
  const auto silent_wait = [&] {
    const auto opened = Clock::now();
    Client c(d.port());
    c.read_all(4s);
    return Clock::now() - opened;
  };
  CHECK(silent_wait() < 500ms);  // the banner comes at once
  d.rewrite_config(after_read);
  d.signal(SIGHUP);
  REQUIRE(wait_count(d, "reload complete", 1));
  CHECK(silent_wait() >= 1200ms);  // held back by the kernel for 1s, then read_timeout
  d.rewrite_config(banner);
  d.signal(SIGHUP);
  REQUIRE(wait_count(d, "reload complete", 2));
  CHECK(silent_wait() < 500ms);
}

TEST_CASE("listeners on port 0 keep their own sockets when a reload removes or adds one between them", "[reload]") {
  // Every listener asks for any free port of 127.0.0.1: the same address.
  // Without defer_accept, a removed listener closes its socket at once.
  const auto listener = [](const std::string& name) {
    return "[[listener]]\nname = \"" + name + "\"\naddress = \"127.0.0.1:0\"\ndefer_accept = \"0s\"\n"
           "message = \"" + name + "\\n\"\n";
  };
  auto d = Daemon::start(listener("first") + listener("middle") + listener("last"), {.listeners = 3});
  const auto first = d.port("first");
  const auto middle = d.port("middle");
  const auto last = d.port("last");

  d.rewrite_config(listener("first") + listener("last"));
  d.signal(SIGHUP);
  REQUIRE(d.wait_log("reload complete: 2 listener(s) kept, 0 added, 1 removed"));
  CHECK_THAT(d.log(), Contains("listener \"middle\" on 127.0.0.1:" + std::to_string(middle) + " removed"));
  CHECK(ask(first) == "first\n");
  CHECK(ask(last) == "last\n");
  CHECK(try_connect(middle) < 0);

  d.rewrite_config(listener("first") + listener("new") + listener("last"));
  d.signal(SIGHUP);
  REQUIRE(d.wait_log("reload complete: 2 listener(s) kept, 1 added, 0 removed"));
  REQUIRE(d.wait_log("serving new on 127.0.0.1:"));
  CHECK(ask(first) == "first\n");
  CHECK(ask(last) == "last\n");
}
