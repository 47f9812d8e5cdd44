// porticoctl's command line.

#include <catch2/catch.hpp>

#include "ctl/cli.hpp"

using namespace portico::control;
using namespace std::chrono_literals;

namespace {

Cli parse(const std::vector<std::string>& args) {
  auto cli = parse_command_line(args);
  INFO((cli ? std::string() : cli.error().message()));
  REQUIRE(cli.has_value());
  return *cli;
}

std::string error_of(const std::vector<std::string>& args) {
  auto cli = parse_command_line(args);
  REQUIRE_FALSE(cli.has_value());
  return cli.error().message();
}

}  // namespace

TEST_CASE("porticoctl's options come before the command, --json anywhere", "[control]") {
  const Cli plain = parse({"status"});
  CHECK(plain.socket.empty());
  CHECK(plain.config == "/etc/portico/portico.toml");
  CHECK(plain.request == Request{"status", {}, false, std::nullopt});

  const Cli full = parse({"-s", "/run/x.sock", "--json", "connections", "echo"});
  CHECK(full.socket == "/run/x.sock");
  CHECK(full.request == Request{"connections", {"echo"}, true, std::nullopt});

  CHECK(parse({"--socket=/a", "status"}).socket == "/a");
  CHECK(parse({"-c", "/etc/other.toml", "reload"}).config == "/etc/other.toml");
  CHECK(parse({"--config=/e.toml", "reload", "--json"}).request.json);
  CHECK(parse({"drain", "echo", "--timeout", "5s"}).request.timeout == 5000ms);
  CHECK(parse({"drain", "--timeout=2m", "echo"}).request == Request{"drain", {"echo"}, false, 120000ms});
}

TEST_CASE("porticoctl upgrade takes --timeout and --json, and no argument", "[control]") {
  CHECK(parse({"upgrade"}).request == Request{"upgrade", {}, false, std::nullopt});
  CHECK(parse({"upgrade", "--timeout", "90s", "--json"}).request == Request{"upgrade", {}, true, 90000ms});
  CHECK(parse({"--json", "upgrade", "--timeout=1m"}).request == Request{"upgrade", {}, true, 60000ms});
  CHECK(error_of({"upgrade", "now"}) == "upgrade takes 0 arguments: upgrade [--timeout 30s]");
  CHECK(error_of({"upgrade", "--timeout", "0s"}) == "--timeout must be longer than 0s");
  CHECK(error_of({"upgrade", "-c", "x.toml"}) == "\"upgrade\" takes no -c; write it before the command");
  CHECK(usage().find("  upgrade [--timeout 30s]         start porticod's binary again; it takes over once it "
                     "serves\n") != std::string::npos);
  CHECK(usage().find("75 an upgrade is in progress") != std::string::npos);
}

TEST_CASE("-c after diff names the file to compare, before it the config naming the socket", "[control]") {
  const Cli diff = parse({"-c", "/etc/portico/portico.toml", "diff", "-c", "new.toml"});
  CHECK(diff.config == "/etc/portico/portico.toml");
  CHECK(diff.request == Request{"diff", {"new.toml"}, false, std::nullopt});
  CHECK(parse({"diff"}).request.args.empty());
  CHECK(error_of({"status", "-c", "x.toml"}) == "\"status\" takes no -c; write it before the command");
}

TEST_CASE("the words after \"--\" are arguments, for a listener named like an option", "[control]") {
  CHECK(parse({"disable", "--", "--odd"}).request.args == std::vector<std::string>{"--odd"});
}

TEST_CASE("porticoctl's usage mistakes are sentences", "[control]") {
  CHECK(error_of({}) == "no command given");
  CHECK(error_of({"-s"}) == "--socket needs a value");
  CHECK(error_of({"-s", "", "status"}) == "--socket needs a path");
  CHECK(error_of({"--frob", "status"}) == "unknown option \"--frob\"");
  CHECK(error_of({"frob"}) == "unknown command \"frob\"; try \"help\"");
  CHECK(error_of({"enable"}) == "enable takes 1 argument: enable LISTENER");
  CHECK(error_of({"probe", "a", "b"}) == "probe takes 0 or 1 argument: probe [LISTENER]");
  CHECK(error_of({"status", "--timeout", "5s"}) == "status takes no --timeout");
  CHECK(error_of({"drain", "x", "--timeout", "5"}).starts_with("--timeout \"5\": "));
  CHECK(parse({"--help"}).help);
  CHECK(parse({"-V"}).version);
  CHECK(usage().find("Exit status: 0 success, 1 the command failed, 64 usage error, 69 porticod not reachable") !=
        std::string::npos);
}
