// What a handler written against the library can rely on from Connection and
// from Handler::client_speaks_first(), seen from real clients on 127.0.0.1.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <portico/config.hpp>
#include <portico/connection.hpp>
#include <portico/handler.hpp>
#include <portico/registry.hpp>
#include <portico/testing.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using portico::testing::RunningServer;
using namespace std::chrono_literals;

namespace {

namespace asio = boost::asio;

// Reads once through one buffer shared by every connection of the thread,
// answers with what it read, closes. It waits for the client's bytes and
// lets the other connections run before it reads, so that several of them
// read in the same turn of the event loop.
class Mirror final : public portico::Handler {
 public:
  asio::awaitable<void> serve(portico::Connection& conn) override {
    thread_local char shared[64];
    if (!(co_await conn.wait_readable()).ok()) co_return;
    co_await asio::post(conn.executor(), asio::use_awaitable);
    const portico::IoResult read = co_await conn.read_some(asio::buffer(shared));
    if (!read.ok()) co_return;
    const std::string got(shared, read.bytes);
    co_await conn.write(asio::buffer(got));
  }
};

// Says "started" as soon as serve() runs, then closes.
class Starter final : public portico::Handler {
 public:
  explicit Starter(std::optional<portico::Duration> wait) : wait_(wait) {}
  std::optional<portico::Duration> client_speaks_first() const override { return wait_; }
  asio::awaitable<void> serve(portico::Connection& conn) override {
    co_await conn.write(asio::buffer(std::string_view("started\n")));
  }

 private:
  std::optional<portico::Duration> wait_;
};

portico::HandlerType type_of(std::string name, portico::HandlerFactory create) {
  return portico::HandlerType{.name = std::move(name), .doc = "test", .options = {}, .create = std::move(create)};
}

portico::Config config_for(const portico::Registry& registry, const std::string& handler) {
  const auto loaded =
      portico::parse_config("[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"" + handler + "\"\n", "<test>", registry);
  INFO(loaded.errors.to_string());
  REQUIRE(loaded.config);
  return *loaded.config;
}

}  // namespace

TEST_CASE("read_some writes a buffer shared by waiting connections only while it runs", "[connection]") {
  portico::Registry registry;
  registry.add(type_of("mirror", [](const portico::Options&) { return std::make_unique<Mirror>(); }));
  RunningServer server(registry, config_for(registry, "mirror"));
  // Both handlers wait in read_some on the same buffer; then both clients
  // send at once, so their bytes arrive in one turn of the event loop.
  for (int round = 0; round < 20; ++round) {
    Client first(server.port());
    Client second(server.port());
    std::this_thread::sleep_for(20ms);
    REQUIRE(first.send("first client\n"));
    REQUIRE(second.send("second client\n"));
    CHECK(first.read_all(5s) == "first client\n");
    CHECK(second.read_all(5s) == "second client\n");
  }
}

TEST_CASE("a handler that waits for its client starts when the client sends", "[connection]") {
  portico::Registry registry;
  registry.add(type_of("at-once", [](const portico::Options&) { return std::make_unique<Starter>(std::nullopt); }));
  registry.add(type_of("waits", [](const portico::Options&) { return std::make_unique<Starter>(portico::Duration(0)); }));

  SECTION("by default serve() starts at the accept") {
    RunningServer server(registry, config_for(registry, "at-once"));
    Client client(server.port());
    CHECK(client.read_exactly(8, 5s) == "started\n");
  }
  SECTION("with client_speaks_first() it starts only once bytes arrive") {
    RunningServer server(registry, config_for(registry, "waits"));
    Client client(server.port());
    CHECK(client.read_exactly(8, 300ms).empty());
    REQUIRE(client.send("x"));
    CHECK(client.read_exactly(8, 5s) == "started\n");
  }
  SECTION("or once the client closes its side") {
    RunningServer server(registry, config_for(registry, "waits"));
    Client client(server.port());
    CHECK(client.read_exactly(8, 300ms).empty());
    client.shutdown_write();
    CHECK(client.read_exactly(8, 5s) == "started\n");
  }
}

TEST_CASE("a handler's wait for its client ends at its limit", "[connection]") {
  portico::Registry registry;
  registry.add(
      type_of("waits-a-bit", [](const portico::Options&) { return std::make_unique<Starter>(portico::Duration(400)); }));
  RunningServer server(registry, config_for(registry, "waits-a-bit"));
  Client client(server.port());
  CHECK(client.read_exactly(8, 150ms).empty());
  CHECK(client.read_exactly(8, 5s) == "started\n");
}
