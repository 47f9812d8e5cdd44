// The option schemas of the classic inetd services, as `porticod --check`
// applies them.

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;

namespace {

std::string listener(const std::string& handler, const std::string& options = "") {
  return "[[listener]]\nname = \"" + handler + "\"\naddress = \"127.0.0.1:0\"\nhandler = \"" + handler + "\"\n" +
         options;
}

}  // namespace

TEST_CASE("every classic service accepts its defaults", "[handlers][options]") {
  TempDir dir;
  const auto path = dir.write("all.toml", listener("echo") + listener("discard") + listener("daytime") +
                                              listener("time") + listener("chargen"));
  const auto r = run_porticod({"--check", "-c", path});
  CHECK(r.exit_code == 0);
  CHECK(r.out == path + ": configuration OK (5 listener(s))\n");
}

TEST_CASE("each classic service rejects an unknown option", "[handlers][options]") {
  const std::string handler = GENERATE("echo", "discard", "daytime", "time", "chargen");
  TempDir dir;
  const auto path = dir.write("bogus.toml", listener(handler, "bogus = 1\n"));
  const auto r = run_porticod({"--check", "-c", path});
  INFO(handler << ": " << r.err);
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Contains("unknown key \"bogus\""));
}

TEST_CASE("the classic services' options are checked", "[handlers][options]") {
  TempDir dir;
  SECTION("line_limit is not negative") {
    const auto path = dir.write("bad.toml", listener("chargen", "line_limit = -1\n"));
    const auto r = run_porticod({"--check", "-c", path});
    CHECK(r.exit_code == 78);
    CHECK_THAT(r.err, Contains("\"line_limit\" in listener #1"));
  }
  SECTION("utc is a boolean") {
    const auto path = dir.write("bad.toml", listener("daytime", "utc = \"yes\"\n"));
    const auto r = run_porticod({"--check", "-c", path});
    CHECK(r.exit_code == 78);
    CHECK_THAT(r.err, Contains("\"utc\" in listener #1"));
  }
}
