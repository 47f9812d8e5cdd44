// The control protocol's request parser and answer framing.

#include <catch2/catch.hpp>

#include "ctl/protocol.hpp"

using namespace portico::control;
using namespace std::chrono_literals;

namespace {

std::string error_of(std::string_view line) {
  auto parsed = parse_request(line);
  REQUIRE_FALSE(parsed.has_value());
  return parsed.error().message();
}

}  // namespace

TEST_CASE("a request line is a command, its arguments and options", "[control]") {
  CHECK(parse_request("status").value() == Request{"status", {}, false, std::nullopt});
  CHECK(parse_request("status --json").value() == Request{"status", {}, true, std::nullopt});
  CHECK(parse_request("  connections   echo  ").value() == Request{"connections", {"echo"}, false, std::nullopt});
  CHECK(parse_request("drain echo --timeout 5s --json").value() == Request{"drain", {"echo"}, true, 5000ms});
  CHECK(parse_request("drain --timeout=1m echo").value() == Request{"drain", {"echo"}, false, 60000ms});
  CHECK(parse_request("upgrade").value() == Request{"upgrade", {}, false, std::nullopt});
  CHECK(parse_request("upgrade --timeout 2m --json").value() == Request{"upgrade", {}, true, 120000ms});
  CHECK(parse_request("diff /etc/portico/other.toml").value().args == std::vector<std::string>{"/etc/portico/other.toml"});
  // telnet and socat by hand may send CRLF
  CHECK(parse_request("reload\r").value().command == "reload");
}

TEST_CASE("quoted words carry spaces, quotes and escapes, and are never options", "[control]") {
  CHECK(parse_request(R"(disable "my echo")").value().args == std::vector<std::string>{"my echo"});
  CHECK(parse_request(R"(disable "a\"b\\c")").value().args == std::vector<std::string>{"a\"b\\c"});
  CHECK(parse_request(R"(disable "\x41\u00e9\t")").value().args == std::vector<std::string>{"A\xc3\xa9\t"});
  CHECK(parse_request(R"(enable "--json")").value() == Request{"enable", {"--json"}, false, std::nullopt});
  CHECK(error_of(R"(disable "open)") == "a quoted word does not end (no closing \")");
  CHECK(error_of(R"(disable "a"b)") == "a space must follow a quoted word");
  CHECK(error_of(R"(disable "\q")") == "unknown escape \"\\\\q\" in a quoted word");
  CHECK(error_of(R"(disable "\x4")") == "\\x in a quoted word needs 2 hexadecimal digits");
}

TEST_CASE("format_request writes what parse_request reads back", "[control]") {
  for (const Request& request : {Request{"status", {}, true, std::nullopt}, Request{"disable", {"my echo"}, false, std::nullopt},
                                 Request{"drain", {"--odd\"name\\"}, true, 1500ms},
                                 Request{"enable", {"\x01\n\xff"}, false, std::nullopt},
                                 Request{"diff", {"/tmp/a b.toml"}, false, std::nullopt},
                                 Request{"upgrade", {}, true, 45000ms}}) {
    INFO(format_request(request));
    CHECK(parse_request(format_request(request)).value() == request);
  }
  CHECK(format_request(Request{"drain", {"echo"}, true, 30000ms}) == "drain echo --timeout 30s --json");
  CHECK(quote_word("plain") == "plain");
  CHECK(quote_word("") == "\"\"");
}

TEST_CASE("a bad request says what is wrong, quoting what it got", "[control]") {
  CHECK(error_of("") == "empty request; try \"help\"");
  CHECK(error_of("frobnicate now") == "unknown command \"frobnicate\"; try \"help\"");
  CHECK(error_of("STATUS") == "unknown command \"STATUS\"; try \"help\"");
  CHECK(error_of(std::string("sta\0tus\x1b[2J", 11)) == "unknown command \"sta\\x00tus\\x1b[2J\"; try \"help\"");
  CHECK(error_of("\"status\"") == "unknown command \"status\"; try \"help\"");
  CHECK(error_of("status extra") == "status takes 0 arguments: status");
  CHECK(error_of("disable") == "disable takes 1 argument: disable LISTENER");
  CHECK(error_of("connections a b") == "connections takes 0 or 1 argument: connections [LISTENER]");
  CHECK(error_of("status --verbose") == "unknown option \"--verbose\"");
  CHECK(error_of("status --timeout 5s") == "status takes no --timeout");
  CHECK(error_of("drain echo --timeout") == "--timeout needs a duration, such as 30s");
  CHECK(error_of("drain echo --timeout soon").starts_with("--timeout \"soon\": "));
  CHECK(error_of("drain echo --timeout 0s") == "--timeout must be longer than 0s");
  CHECK(error_of("enable \"\"") == "an argument of enable is empty");
  CHECK(error_of("upgrade now") == "upgrade takes 0 arguments: upgrade [--timeout 30s]");
  CHECK(error_of("upgrade --timeout -5s").starts_with("--timeout \"-5s\": "));
}

TEST_CASE("an answer is a status line, body lines and an empty line", "[control]") {
  CHECK(format_answer(Status{}, {"a", "b"}) == "OK\na\nb\n\n");
  CHECK(format_answer(Status{78, "reload failed"}, {"x.toml:1:2: bad"}) == "ERR 78 reload failed\nx.toml:1:2: bad\n\n");
  // An empty body line would end the answer early; a control character
  // would act on the reader's terminal.
  CHECK(format_answer(Status{}, {"", "a\nb\x1b"}) == "OK\n \na\\nb\\x1b\n\n");
  CHECK(format_answer(Status{1, "x\ny"}, {}) == "ERR 1 x\\ny\n\n");
}

TEST_CASE("status lines read back, and anything else is not one", "[control]") {
  CHECK(parse_status("OK")->code == 0);
  CHECK(parse_status("OK\r")->code == 0);
  const auto err = parse_status("ERR 77 permission denied: uid 5");
  REQUIRE(err);
  CHECK(err->code == 77);
  CHECK(err->message == "permission denied: uid 5");
  CHECK(parse_status("ERR 1")->message.empty());
  CHECK_FALSE(parse_status("ok"));
  CHECK_FALSE(parse_status("ERR x y"));
  CHECK_FALSE(parse_status("ERR 0 zero is success"));
  CHECK_FALSE(parse_status("ERR 300 too big"));
  CHECK_FALSE(parse_status("ERR 12x"));
  CHECK_FALSE(parse_status("HTTP/1.1 200 OK"));
}

TEST_CASE("JSON output escapes what it quotes and stays valid UTF-8", "[control]") {
  JsonWriter out;
  out.begin_object()
      .field("name", "a\"b\\c")
      .field("raw", std::string_view("\n\xff", 2))
      .field("n", std::uint64_t{18446744073709551615u})
      .field("neg", -3)
      .field("ok", true)
      .key("list")
      .begin_array()
      .value("x")
      .null()
      .begin_object()
      .end_object()
      .end_array()
      .field("half", 0.5)
      .end_object();
  CHECK(out.str() ==
        R"({"name":"a\"b\\c","raw":"\\n\\xff","n":18446744073709551615,"neg":-3,"ok":true,"list":["x",null,{}],"half":0.5})");
}
