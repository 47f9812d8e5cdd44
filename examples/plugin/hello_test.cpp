// The hello plugin's own test: its handler type serving real connections
// on 127.0.0.1, inside this process. Exit status 0 when every check passed.

#include <cstdio>
#include <exception>
#include <string>

#include <portico/plugin.hpp>
#include <portico/testing.hpp>

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
  if (!ok) ++failures;
}

}  // namespace

int main() {
  try {
    // What porticod does when it loads the plugin: call its entry point and
    // let it register its handler types.
    portico::Registry registry;
    portico_plugin_info()->register_handlers(registry);
    check(registry.find("hello") != nullptr, "the plugin registers the handler type \"hello\"");

    portico::testing::RunningServer server(registry, R"(
      [[listener]]
      name = "default"
      address = "127.0.0.1:0"
      handler = "hello"

      [[listener]]
      name = "named"
      address = "127.0.0.1:0"
      handler = "hello"
      who = "portico"
    )");
    check(portico::testing::talk(server.port("default"), "") == "Hello, world!\n",
          "it answers \"Hello, world!\\n\" and closes");
    check(portico::testing::talk(server.port("named"), "") == "Hello, portico!\n",
          "the who option names whom it greets");

    // A mistake in the options is reported with its position, as porticod
    // would print it.
    bool refused = false;
    try {
      portico::testing::RunningServer wrong(registry, "[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"hello\"\nwho = 7\n");
    } catch (const std::exception& e) {
      refused = std::string(e.what()).find("<test>:4:7:") != std::string::npos;
      if (!refused) std::printf("  got: %s\n", e.what());
    }
    check(refused, "who = 7 is a config error at line 4, column 7");
  } catch (const std::exception& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
