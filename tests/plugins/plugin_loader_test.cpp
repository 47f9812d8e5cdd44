// portico::load_plugin on the example plugin, loaded into this process:
// unit_tests exports its symbols, as porticod does, for the plugin to use.

#include <string>

#include <catch2/catch.hpp>

#include <portico/config.hpp>
#include <portico/plugin.hpp>
#include <portico/registry.hpp>
#include <portico/version.hpp>

#include "support/daemon.hpp"
#include <portico/testing.hpp>

using namespace portico::test;
using portico::testing::RunningServer;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

const std::string hello_path = HELLO_PLUGIN_PATH;
const std::string mismatched_path = MISMATCHED_PLUGIN_PATH;
const std::string not_a_plugin_path = NOT_A_PLUGIN_PATH;

std::string error_of(const portico::Result<void>& loaded) { return loaded ? "" : loaded.error().message(); }

}  // namespace

TEST_CASE("load_plugin registers the plugin's handler types with their options", "[plugin]") {
  portico::Registry registry;
  REQUIRE(portico::load_plugin(registry, hello_path));
  const portico::HandlerType* hello = registry.find("hello");
  REQUIRE(hello != nullptr);
  const portico::OptionSpec* who = hello->find_option("who");
  REQUIRE(who != nullptr);
  CHECK(who->type == portico::OptionType::string);
  CHECK_THAT(registry.describe(), Contains("hello: answer \"Hello, <who>!\" and close"));
}

TEST_CASE("a handler type from a plugin serves connections", "[plugin]") {
  portico::Registry registry;
  REQUIRE(portico::load_plugin(registry, hello_path));
  const auto loaded = portico::parse_config(
      "[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"hello\"\nwho = \"unit\"\n", "<test>", registry);
  INFO(loaded.errors.to_string());
  REQUIRE(loaded.config);
  RunningServer server(registry, *loaded.config);
  Client client(server.port());
  bool closed = false;
  CHECK(client.read_all(5s, &closed) == "Hello, unit!\n");
  CHECK(closed);
}

TEST_CASE("load_plugin refuses a plugin built against another portico version", "[plugin]") {
  portico::Registry registry;
  CHECK(error_of(portico::load_plugin(registry, mismatched_path)) ==
                    "plugin \"hello_mismatched\" (" + mismatched_path +
                        ") was built against portico 0.0.1; this is portico " + portico::version() +
                        ": rebuild it against this version");
  CHECK(registry.find("hello_mismatched") == nullptr);
  CHECK(registry.names().empty());
}

TEST_CASE("load_plugin reports a file it cannot load with dlerror's reason", "[plugin]") {
  portico::Registry registry;
  CHECK_THAT(error_of(portico::load_plugin(registry, "/nonexistent/libnothing.so")),
                    StartsWith("cannot load plugin: /nonexistent/libnothing.so: ") &&
                        Contains("No such file or directory"));
}

TEST_CASE("load_plugin refuses a shared object without the entry point", "[plugin]") {
  portico::Registry registry;
  CHECK(error_of(portico::load_plugin(registry, not_a_plugin_path)) ==
                    "\"" + not_a_plugin_path + "\" is not a portico plugin (no portico_plugin_info symbol)");
}

TEST_CASE("loading a plugin twice into one registry is a duplicate handler type", "[plugin]") {
  portico::Registry registry;
  REQUIRE(portico::load_plugin(registry, hello_path));
  CHECK(error_of(portico::load_plugin(registry, hello_path)) ==
                    "plugin \"hello\" (" + hello_path + "): handler type \"hello\" is registered twice");
  CHECK(registry.names() == std::vector<std::string>{"hello"});
}
