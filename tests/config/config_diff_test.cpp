// diff_configs(): what a reload changes, as porticoctl diff and reload
// report it.

#include <catch2/catch.hpp>

#include <portico/config.hpp>
#include <portico/registry.hpp>

#include "support/daemon.hpp"

namespace {

const portico::Registry& builtin() {
  static const portico::Registry registry = [] {
    portico::Registry r;
    portico::register_builtin_handlers(r);
    return r;
  }();
  return registry;
}

portico::Config parse(const std::string& text) {
  auto result = portico::parse_config(text, "test.toml", builtin());
  INFO(result.errors.to_string());
  REQUIRE(result.config);
  return *result.config;
}

std::vector<std::string> diff_lines(const std::string& before, const std::string& after) {
  return portico::diff_configs(parse(before), parse(after), builtin()).lines();
}

const std::string base = R"(
[daemon]
log_level = "info"

[[listener]]
name = "hello"
address = "127.0.0.1:8888"

[[listener]]
name = "echo"
address = "127.0.0.1:7"
handler = "echo"
)";

}  // namespace

TEST_CASE("the same configuration, written otherwise, changes nothing", "[config][diff]") {
  const std::string same = R"(
[[listener]]
address = "127.0.0.1:8888"
name = "hello"
handler = "greeting"
read_timeout = "10000ms"

[[listener]]
handler = "echo"
address = "127.0.0.1:7"
name = "echo"
idle_timeout = "0s"
)";
  const auto diff = portico::diff_configs(parse(base), parse(same), builtin());
  CHECK(diff.empty());
  CHECK(diff.lines().empty());
  CHECK(diff.kept.size() == 2);
}

TEST_CASE("a diff names the added and removed listeners and each changed key, old then new",
          "[config][diff]") {
  const std::string after = R"(
[daemon]
log_level = "debug"

[[listener]]
name = "hello"
address = "127.0.0.1:8888"
message = "hi\n"

[[listener]]
name = "discard"
address = "127.0.0.1:9"
handler = "discard"
)";
  CHECK(diff_lines(base, after) == std::vector<std::string>{
                                       "+ listener \"discard\" 127.0.0.1:9 (discard)",
                                       "- listener \"echo\" 127.0.0.1:7 (echo)",
                                       "~ [daemon] log_level: \"info\" -> \"debug\"",
                                       "~ listener \"hello\" message: \"Hello from server!\\n\" -> \"hi\\n\"",
                                   });
}

TEST_CASE("listeners are matched by address, as a reload keeps their sockets", "[config][diff]") {
  // Renamed, and its handler changed: the socket stays, so it is kept with
  // those keys changed, the handler's own options included.
  const std::string after = R"(
[[listener]]
name = "greeter"
address = "127.0.0.1:8888"

[[listener]]
name = "echo"
address = "127.0.0.1:7"
handler = "discard"
)";
  const auto diff = portico::diff_configs(parse(base), parse(after), builtin());
  CHECK(diff.added.empty());
  CHECK(diff.removed.empty());
  REQUIRE(diff.kept.size() == 2);
  CHECK(diff.kept[0].name == "greeter");
  CHECK(diff.lines() == std::vector<std::string>{
                            "~ listener \"greeter\" name: \"hello\" -> \"greeter\"",
                            "~ listener \"echo\" handler: \"echo\" -> \"discard\"",
                        });
}

TEST_CASE("a key only one side has shows as unset, and start-only keys say so", "[config][diff]") {
  const std::string before = R"(
[daemon]
pid_file = "/run/a.pid"

[[listener]]
name = "x"
address = "127.0.0.1:1"
handler = "echo"
rate = 10
)";
  const std::string after = R"(
[daemon]
pid_file = "/run/b.pid"

[[listener]]
name = "x"
address = "127.0.0.1:1"
handler = "echo"
)";
  CHECK(diff_lines(before, after) == std::vector<std::string>{
                                         "~ [daemon] pid_file: \"/run/a.pid\" -> \"/run/b.pid\" (takes effect at restart)",
                                         "~ listener \"x\" rate: 10 -> 0",
                                         "~ listener \"x\" burst: 0 -> (unset)",
                                     });
}

TEST_CASE("listeners on port 0 are matched by name, like the sockets a reload keeps", "[config][diff]") {
  const std::string two = R"(
[[listener]]
name = "a"
address = "127.0.0.1:0"
[[listener]]
name = "b"
address = "127.0.0.1:0"
handler = "echo"
)";
  // The first one goes: "b" keeps its socket, and is not "a" renamed.
  const std::string one = R"(
[[listener]]
name = "b"
address = "127.0.0.1:0"
handler = "echo"
)";
  const auto diff = portico::diff_configs(parse(two), parse(one), builtin());
  REQUIRE(diff.removed.size() == 1);
  CHECK(diff.removed[0].name == "a");
  REQUIRE(diff.kept.size() == 1);
  CHECK(diff.kept[0].name == "b");
  CHECK(diff.lines() == std::vector<std::string>{"- listener \"a\" 127.0.0.1:0 (greeting)"});
}

TEST_CASE("control_socket is read from a file alone, with positions for its mistakes", "[config][control]") {
  const portico::test::TempDir dir;
  const auto write = [&](const std::string& name, const std::string& text) { return dir.write(name, text); };
  {
    // Neither the unknown handler nor the missing user matter to porticoctl.
    const auto path = write("portico-ctl-a.toml",
                            "[daemon]\nuser = \"no-such-user\"\ncontrol_socket = \"/run/p/c.sock\"\n[[listener]]\n"
                            "address = \"1.2.3.4:5\"\nhandler = \"from-a-plugin\"\n");
    portico::Diagnostics errors(path);
    CHECK(portico::read_control_socket(path, errors) == "/run/p/c.sock");
    CHECK(errors.empty());
  }
  {
    const auto path = write("portico-ctl-b.toml", "[daemon]\n\ncontrol_socket = \"relative.sock\"\n");
    portico::Diagnostics errors(path);
    CHECK_FALSE(portico::read_control_socket(path, errors));
    CHECK(errors.to_string() == path + ":3:18: \"control_socket\" in [daemon] must be an absolute path, not "
                                       "\"relative.sock\"\n");
  }
  {
    const auto path = write("portico-ctl-c.toml", "[[listener]]\naddress = \"127.0.0.1:1\"\n");
    portico::Diagnostics errors(path);
    CHECK(portico::read_control_socket(path, errors) == "");
  }
  {
    const auto path = write("portico-ctl-c.toml", "[daemon]\ncontrol_socket = 5\n");
    portico::Diagnostics errors(path);
    CHECK_FALSE(portico::read_control_socket(path, errors));
    CHECK(errors.size() == 1);
  }
}
