// One test per kind of config mistake, each asserting the exact
// FILE:LINE:COL and message a user sees.

#include <algorithm>

#include <unistd.h>

#include <catch2/catch.hpp>

#include <portico/config.hpp>
#include <portico/registry.hpp>

namespace {

std::vector<std::string> errors_of(const std::string& text) {
  portico::Registry registry;
  portico::register_builtin_handlers(registry);
  const auto result = portico::parse_config(text, "my.toml", registry);
  CHECK_FALSE(result.config);
  std::vector<std::string> out;
  for (const auto& d : result.errors.all()) out.push_back(d.to_string());
  return out;
}

using Errors = std::vector<std::string>;

}  // namespace

TEST_CASE("a TOML syntax error names its position", "[config][errors]") {
  const auto errors = errors_of("[[listener]]\naddress = \"127.0.0.1:1\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].starts_with("my.toml:2:"));
  CHECK(errors[0].find("string") != std::string::npos);
}

TEST_CASE("a value of the wrong type", "[config][errors]") {
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nread_limit = \"100\"\n") ==
        Errors{"my.toml:3:14: \"read_limit\" in listener #1 must be an integer, not a string"});
  CHECK(errors_of("[daemon]\nshutdown_timeout = 10\n[[listener]]\naddress = \"127.0.0.1:1\"\n") ==
        Errors{"my.toml:2:20: \"shutdown_timeout\" in [daemon] must be a duration string such as \"10s\", not an "
               "integer"});
}

TEST_CASE("an unknown key, with a suggestion when one is close", "[config][errors]") {
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nmesage = \"x\"\n") ==
        Errors{"my.toml:3:1: unknown key \"mesage\" in listener #1 (did you mean \"message\"?)"});
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nflavour = 1\n") ==
        Errors{"my.toml:3:1: unknown key \"flavour\" in listener #1"});
  CHECK(errors_of("[deamon]\n[[listener]]\naddress = \"127.0.0.1:1\"\n") ==
        Errors{"my.toml:1:2: unknown key \"deamon\" at the top level (did you mean \"daemon\"?); expected [daemon] "
               "or [[listener]]"});
}

TEST_CASE("a missing required key", "[config][errors]") {
  CHECK(errors_of("[[listener]]\nname = \"x\"\n") ==
        Errors{"my.toml:1:1: listener #1 is missing the required key \"address\""});
}

TEST_CASE("no listener at all", "[config][errors]") {
  CHECK(errors_of("[daemon]\nlog_level = \"info\"\n") ==
        Errors{"my.toml:1:1: no [[listener]] defined: there would be nothing to serve"});
}

TEST_CASE("listener written as a single table", "[config][errors]") {
  CHECK(errors_of("[listener]\naddress = \"127.0.0.1:1\"\n") ==
        Errors{"my.toml:1:1: \"listener\" must be an array of tables: write each as [[listener]]"});
}

TEST_CASE("duplicate listener names and addresses", "[config][errors]") {
  CHECK(errors_of("[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n"
                  "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:2\"\n") ==
        Errors{"my.toml:4:1: duplicate listener name \"a\" (first used at 1:1)"});
  CHECK(errors_of("[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n"
                  "[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:1\"\n") ==
        Errors{"my.toml:4:1: duplicate address \"127.0.0.1:1\" (already used by listener \"a\" at 1:1)"});
}

TEST_CASE("each duplicate is reported once, against the first listener that used the name or address",
          "[config][errors]") {
  std::string text;
  for (int i = 0; i < 4; ++i) text += "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n";
  CHECK(errors_of(text) == Errors{"my.toml:4:1: duplicate listener name \"a\" (first used at 1:1)",
                                  "my.toml:4:1: duplicate address \"127.0.0.1:1\" (already used by listener \"a\" at 1:1)",
                                  "my.toml:7:1: duplicate listener name \"a\" (first used at 1:1)",
                                  "my.toml:7:1: duplicate address \"127.0.0.1:1\" (already used by listener \"a\" at 1:1)",
                                  "my.toml:10:1: duplicate listener name \"a\" (first used at 1:1)",
                                  "my.toml:10:1: duplicate address \"127.0.0.1:1\" (already used by listener \"a\" at 1:1)"});
}

TEST_CASE("only the first 100 errors are kept; the rest are counted", "[config][errors]") {
  portico::Registry registry;
  portico::register_builtin_handlers(registry);
  // 3000 copies of one listener: 2999 duplicate addresses.
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "[[listener]]\naddress = \"127.0.0.1:1\"\n";
  const auto result = portico::parse_config(text, "my.toml", registry);
  CHECK_FALSE(result.config);
  CHECK(result.errors.size() == 2 * 2999);
  REQUIRE(result.errors.all().size() == 100);
  CHECK(result.errors.all().back().to_string() ==
        "my.toml:101:1: duplicate address \"127.0.0.1:1\" (already used by listener \"127.0.0.1:1\" at 1:1)");
  CHECK(result.errors.omitted() == 2 * 2999 - 100);
  const std::string printed = result.errors.to_string();
  CHECK(std::count(printed.begin(), printed.end(), '\n') == 101);
  CHECK(printed.ends_with("\nmy.toml: ... and 5898 more errors (only the first 100 are shown)\n"));
}

TEST_CASE("values are quoted with their control characters escaped: one error is one line", "[config][errors]") {
  // TOML's \u001b is ESC; the newline would forge a second error line.
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\n"
                  "handler = \"x\\u001b[31m\\nfake.toml:1:1: injected\"\n") ==
        Errors{"my.toml:3:11: unknown handler type \"x\\x1b[31m\\nfake.toml:1:1: injected\"; known types: chargen, "
               "daytime, discard, echo, exec, greeting, metrics, proxy, time"});
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\n\"bad\\tkey\\\"\" = 1\n") ==
        Errors{"my.toml:3:1: unknown key \"bad\\tkey\\\"\" in listener #1"});
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:\\r99\"\n") ==
        Errors{"my.toml:2:11: \"address\" in listener #1: invalid address \"127.0.0.1:\\r99\": port \"\\r99\" is not "
               "a number from 0 to 65535"});
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nidle_timeout = \"1\\u009b2J\"\n") ==
        Errors{"my.toml:3:16: \"idle_timeout\" in listener #1: invalid duration \"1\\u009b2J\": unknown unit "
               "\"\\u009b2J\" (use ms, s, m or h)"});
}

TEST_CASE("a listener name with control characters is refused", "[config][errors]") {
  CHECK(errors_of("[[listener]]\nname = \"web\\nserving fake on 1.2.3.4:1 (x)\"\naddress = \"127.0.0.1:1\"\n") ==
        Errors{"my.toml:2:8: \"name\" in listener #1 must not hold control characters, not \"web\\nserving fake on "
               "1.2.3.4:1 (x)\""});
  CHECK(errors_of("[[listener]]\nname = \"\\u001b[2J\"\naddress = \"127.0.0.1:1\"\n") ==
        Errors{"my.toml:2:8: \"name\" in listener #1 must not hold control characters, not \"\\x1b[2J\""});
}

TEST_CASE("socket_user and socket_group: Unix listeners only, names that exist", "[config][errors]") {
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nsocket_user = \"nobody\"\nsocket_group = \"nogroup\"\n") ==
        Errors{"my.toml:3:15: \"socket_user\" in listener #1 applies only to Unix socket addresses",
               "my.toml:4:16: \"socket_group\" in listener #1 applies only to Unix socket addresses"});
  CHECK(errors_of("[[listener]]\naddress = \"unix:/run/x.sock\"\nsocket_user = \"no-such-user-here\"\n"
                  "socket_group = \"no-such-group-here\"\n") ==
        Errors{"my.toml:3:15: \"socket_user\" in listener #1: user \"no-such-user-here\" does not exist",
               "my.toml:4:16: \"socket_group\" in listener #1: group \"no-such-group-here\" does not exist"});
}

TEST_CASE("a bad address", "[config][errors]") {
  CHECK(errors_of("[[listener]]\naddress = \"localhost:80\"\n") ==
        Errors{"my.toml:2:11: \"address\" in listener #1: invalid address \"localhost:80\": \"localhost\" is not an "
               "IPv4 address (host names are not accepted)"});
}

TEST_CASE("a bad duration", "[config][errors]") {
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nread_timeout = \"10 seconds\"\n") ==
        Errors{"my.toml:3:16: \"read_timeout\" in listener #1: invalid duration \"10 seconds\": unknown unit \" "
               "seconds\" (use ms, s, m or h)"});
}

TEST_CASE("an unknown handler type, with the known ones", "[config][errors]") {
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nhandler = \"greting\"\n") ==
        Errors{"my.toml:3:11: unknown handler type \"greting\" (did you mean \"greeting\"?); known types: " +
               [] {
                 portico::Registry r;
                 portico::register_builtin_handlers(r);
                 std::string names;
                 for (const auto& n : r.names()) names += (names.empty() ? "" : ", ") + n;
                 return names;
               }()});
}

TEST_CASE("a value outside its range or choices", "[config][errors]") {
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nread_limit = 0\n") ==
        Errors{"my.toml:3:14: \"read_limit\" in listener #1 must be from 1 to 65536, not 0"});
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nmode = \"later\"\n") ==
        Errors{"my.toml:3:8: \"mode\" in listener #1 must be one of after-read, on-connect, not \"later\""});
  CHECK(errors_of("[daemon]\nlog_level = \"loud\"\n[[listener]]\naddress = \"127.0.0.1:1\"\n") ==
        Errors{"my.toml:2:13: \"log_level\" in [daemon] must be one of trace, debug, info, warn, error, critical, "
               "off, not \"loud\""});
}

TEST_CASE("a PROXY header timeout of zero", "[config][errors]") {
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nproxy_protocol = true\nproxy_protocol_timeout = \"0s\"\n") ==
        Errors{"my.toml:4:26: \"proxy_protocol_timeout\" in listener #1 must be longer than 0s: the header has to "
               "arrive in some time"});
}

TEST_CASE("defer_accept is \"auto\" or whole seconds, on IP listeners", "[config][errors]") {
  for (const std::string value : {"500ms", "2h", "soon", "-1s"}) {
    CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\ndefer_accept = \"" + value + "\"\n") ==
          Errors{"my.toml:3:16: \"defer_accept\" in listener #1 must be \"auto\" or whole seconds from \"0s\" to "
                 "\"1h\", not \"" + value + "\""});
  }
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\ndefer_accept = 5\n") ==
        Errors{"my.toml:3:16: \"defer_accept\" in listener #1 must be a duration string such as \"10s\", not an "
               "integer"});
  CHECK(errors_of("[[listener]]\naddress = \"unix:/run/x.sock\"\ndefer_accept = \"1s\"\n") ==
        Errors{"my.toml:3:16: \"defer_accept\" in listener #1 applies only to IP addresses"});
}

TEST_CASE("every mistake of a file is reported, in file order", "[config][errors]") {
  const auto errors = errors_of(
      "[daemon]\n"
      "log_level = 3\n"
      "[[listener]]\n"
      "address = \"1.2.3\"\n"
      "[[listener]]\n"
      "address = \"127.0.0.1:5\"\n"
      "read_limt = 5\n");
  CHECK(errors == Errors{
                      "my.toml:2:13: \"log_level\" in [daemon] must be a string, not an integer",
                      "my.toml:4:11: \"address\" in listener #1: invalid address \"1.2.3\": missing port; expected "
                      "\"a.b.c.d:port\", \"[ipv6]:port\" or \"unix:/path\"",
                      "my.toml:7:1: unknown key \"read_limt\" in listener #2 (did you mean \"read_limit\"?)",
                  });
}

TEST_CASE("an unreadable file is reported without a position", "[config][errors]") {
  portico::Registry registry;
  const auto result = portico::load_config_file("/nonexistent/x.toml", registry);
  REQUIRE_FALSE(result.config);
  CHECK(result.errors.to_string() == "/nonexistent/x.toml: cannot read the file: No such file or directory\n");
}

TEST_CASE("an option that needs root together with [daemon] user", "[config][errors]") {
  const auto errors = errors_of("[daemon]\nuser = \"nobody\"\n[[listener]]\naddress = \"127.0.0.1:1\"\nhandler = "
                                "\"exec\"\ncommand = [\"/bin/cat\"]\nuser = \"nobody\"\n");
  // Not running as root, exec itself already refuses "user" (tested with the
  // exec handler); as root, the combination is what is refused.
  if (geteuid() != 0) {
    CHECK_FALSE(errors.empty());
    return;
  }
  CHECK_THAT(errors, Catch::Matchers::VectorContains(std::string(
                         "my.toml:7:8: \"user\" in listener \"127.0.0.1:1\" needs porticod to keep root, but "
                         "[daemon] user = \"nobody\" drops root after binding; remove one of the two (with no "
                         "[daemon] user, set allow_root = true)")));
}

TEST_CASE("a NUL character in an address is a mistake, not the end of the address", "[config][errors]") {
  // inet_pton and socket paths stop at a NUL: these loaded as 127.0.0.1:8080,
  // 10.0.0.0/8 and unix:/run/x, the rest dropped without a word.
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1\\u0000junk:8080\"\n"
                  "[[listener]]\naddress = \"127.0.0.1:8081\"\nallow = [\"10.0.0.0\\u0000x/8\"]\n"
                  "[[listener]]\naddress = \"127.0.0.1:8082\"\nhandler = \"proxy\"\nupstream = [\"unix:/run/x\\u0000y\"]\n") ==
        Errors{
            "my.toml:2:11: \"address\" in listener #1: invalid address \"127.0.0.1\\x00junk:8080\": contains a NUL "
            "character",
            "my.toml:5:10: \"10.0.0.0\\x00x/8\" holds a NUL character (\\u0000), which no name, path or argument may "
            "hold",
            "my.toml:9:13: \"unix:/run/x\\x00y\" holds a NUL character (\\u0000), which no name, path or argument "
            "may hold",
        });
}

TEST_CASE("no name, path or argument may hold a NUL; a greeting's message may", "[config][errors]") {
  CHECK(errors_of("[daemon]\nuser = \"nobody\\u0000x\"\n[[listener]]\naddress = \"127.0.0.1:8080\"\n"
                  "handler = \"exec\"\ncommand = [\"/bin/cat\", \"a\\u0000b\"]\n") ==
        Errors{
            "my.toml:2:8: \"nobody\\x00x\" holds a NUL character (\\u0000), which no name, path or argument may "
            "hold",
            "my.toml:6:24: \"a\\x00b\" holds a NUL character (\\u0000), which no name, path or argument may hold",
        });
  portico::Registry registry;
  portico::register_builtin_handlers(registry);
  const auto greeting =
      portico::parse_config("[[listener]]\naddress = \"127.0.0.1:8080\"\nmessage = \"a\\u0000b\"\n", "my.toml", registry);
  REQUIRE(greeting.config);
  CHECK(greeting.config->listeners[0].options.string("message") == std::string("a\0b", 3));
}

TEST_CASE("access_log: off, stderr, journal or an absolute path; its format and listener keys only when on",
          "[config][errors][access_log]") {
  const std::string listener = "[[listener]]\naddress = \"127.0.0.1:1\"\n";
  CHECK(errors_of("[daemon]\naccess_log = \"access.log\"\n" + listener) ==
        Errors{"my.toml:2:14: \"access_log\" in [daemon] must be \"off\", \"stderr\", \"journal\" or an absolute path, "
               "not \"access.log\""});
  CHECK(errors_of("[daemon]\naccess_log = true\n" + listener) ==
        Errors{"my.toml:2:14: \"access_log\" in [daemon] must be a string, not a boolean"});
  CHECK(errors_of("[daemon]\naccess_log = \"stderr\"\naccess_log_format = \"xml\"\n" + listener) ==
        Errors{"my.toml:3:21: \"access_log_format\" in [daemon] must be one of logfmt, json, not \"xml\""});
  CHECK(errors_of("[daemon]\naccess_log_format = \"json\"\n" + listener) ==
        Errors{"my.toml:2:21: \"access_log_format\" in [daemon] applies only when access_log is on, and it is "
               "\"off\" by default"});
  CHECK(errors_of("[daemon]\naccess_log = \"off\"\naccess_log_format = \"json\"\n" + listener) ==
        Errors{"my.toml:3:21: \"access_log_format\" in [daemon] applies only when access_log is on, and it is "
               "\"off\""});
  // A listener's access_log would choose among lines nobody writes.
  CHECK(errors_of(listener + "access_log = false\n") ==
        Errors{"my.toml:3:14: \"access_log\" in listener #1 applies only when [daemon] access_log is on, and it is "
               "\"off\" by default"});
  CHECK(errors_of("[daemon]\naccess_log = \"off\"\n" + listener + "access_log = true\n") ==
        Errors{"my.toml:5:14: \"access_log\" in listener #1 applies only when [daemon] access_log is on, and it is "
               "\"off\""});
  CHECK(errors_of("[daemon]\naccess_log = \"journal\"\n" + listener + "access_log = \"no\"\n") ==
        Errors{"my.toml:5:14: \"access_log\" in listener #1 must be a boolean (true or false), not a string"});
  // A mistake in [daemon] access_log is reported once, not again for the
  // keys that depend on it.
  CHECK(errors_of("[daemon]\naccess_log = \"log\"\naccess_log_format = \"json\"\n" + listener + "access_log = true\n") ==
        Errors{"my.toml:2:14: \"access_log\" in [daemon] must be \"off\", \"stderr\", \"journal\" or an absolute path, "
               "not \"log\""});
}

TEST_CASE("the metrics handler's request_timeout must be longer than 0s", "[config][errors]") {
  CHECK(errors_of("[[listener]]\naddress = \"127.0.0.1:1\"\nhandler = \"metrics\"\nrequest_timeout = \"0s\"\n") ==
        Errors{"my.toml:4:19: \"request_timeout\" must be longer than 0s: a request has to arrive in some time"});
}
