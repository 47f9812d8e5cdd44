// porticod with plugins: [daemon] plugins loads shared objects whose handler
// types listeners then use; a plugin that cannot be loaded is a config error.

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;

namespace {

const std::string hello_path = HELLO_PLUGIN_PATH;
const std::string mismatched_path = MISMATCHED_PLUGIN_PATH;

// A config loading the plugin at `plugin` (the entry at line 2, column 12)
// with one listener of `handler`.
std::string plugin_config(const std::string& plugin, const std::string& handler) {
  return "[daemon]\nplugins = [\"" + plugin + "\"]\n[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"" +
         handler + "\"\nwho = \"tests\"\n";
}

}  // namespace

TEST_CASE("a handler type from a plugin serves connections", "[plugins]") {
  auto d = Daemon::start(plugin_config(hello_path, "hello"));
  Client c(d.port());
  bool closed = false;
  CHECK(c.read_all(5s, &closed) == "Hello, tests!\n");
  CHECK(closed);
}

TEST_CASE("porticod --list-handlers lists a config's plugin types only with -c", "[plugins][cli]") {
  TempDir dir;
  const auto path = dir.write("plugin.toml", plugin_config(hello_path, "hello"));
  const auto without = run_porticod({"--list-handlers"});
  CHECK(without.exit_code == 0);
  CHECK_THAT(without.out, Contains("greeting: "));
  CHECK_THAT(without.out, !Contains("hello: "));
  const auto with = run_porticod({"-c", path, "--list-handlers"});
  CHECK(with.exit_code == 0);
  CHECK_THAT(with.out, Contains("greeting: "));
  CHECK_THAT(with.out, Contains("hello: answer \"Hello, <who>!\" and close"));
  CHECK_THAT(with.out, Contains("    who "));
}

TEST_CASE("porticod --check accepts a config whose handler type comes from a plugin", "[plugins][cli]") {
  TempDir dir;
  const auto path = dir.write("plugin.toml", plugin_config(hello_path, "hello"));
  const auto r = run_porticod({"--check", "-c", path});
  CHECK(r.exit_code == 0);
  CHECK(r.out == path + ": configuration OK (1 listener(s))\n");
}

TEST_CASE("a plugin built against another portico version is a config error (78)", "[plugins][cli]") {
  TempDir dir;
  const auto path = dir.write("mismatched.toml", plugin_config(mismatched_path, "hello_mismatched"));
  const auto r = run_porticod({"--check", "-c", path});
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Contains(path + ":2:12: "));
  CHECK_THAT(r.err, Contains("plugin \"hello_mismatched\" (" + mismatched_path +
                             ") was built against portico 0.0.1; this is portico 0."));
  CHECK_THAT(r.err, Contains(": rebuild it against this version"));
}

TEST_CASE("a plugin file that cannot be loaded is a config error (78)", "[plugins][cli]") {
  TempDir dir;
  const auto missing = (dir.path() / "libmissing.so").string();
  const auto path = dir.write("missing.toml", plugin_config(missing, "hello"));
  const auto r = run_porticod({"--check", "-c", path});
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Contains(path + ":2:12: "));
  CHECK_THAT(r.err, Contains("cannot load plugin: " + missing + ": cannot open shared object file"));
  // Starting it for real fails the same way.
  const auto started = run_porticod({"-c", path});
  CHECK(started.exit_code == 78);
  CHECK_THAT(started.err, Contains("cannot load plugin"));
}
