// The upstream_list option type through the library's config reader, with
// a handler type of the test's own: strings and { address, weight, backup }
// tables, each entry's position, the shape errors, and printing back.

#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include <portico/config.hpp>
#include <portico/handler.hpp>
#include <portico/registry.hpp>

using Catch::Matchers::Contains;

namespace {

struct Nothing final : portico::Handler {
  boost::asio::awaitable<void> serve(portico::Connection&) override { co_return; }
};

portico::Registry registry_with_lb() {
  portico::Registry registry;
  registry.add(portico::HandlerType{
      .name = "lb",
      .doc = "takes a list of servers",
      .options = {{.name = "servers", .type = portico::OptionType::upstream_list, .default_value = std::nullopt,
                   .doc = "where to go"}},
      .create = [](const portico::Options&) { return std::make_unique<Nothing>(); },
  });
  return registry;
}

portico::LoadResult parse(const portico::Registry& registry, const std::string& servers) {
  return portico::parse_config("[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"lb\"\nservers = " + servers + "\n",
                               "t.toml", registry);
}

}  // namespace

TEST_CASE("upstream_list reads strings and tables, each entry with its position", "[config][upstream_list]") {
  const auto registry = registry_with_lb();
  const auto r = parse(registry, "[\"a:1\", { address = \"b:2\", weight = 3 },\n  { address = \"c:3\", backup = true }]");
  INFO(r.errors.to_string());
  REQUIRE(r.config);
  const auto& list = r.config->listeners.at(0).options.upstream_list("servers");
  REQUIRE(list.size() == 3);
  CHECK(list[0].address == "a:1");
  CHECK(list[0].weight == 1);
  CHECK_FALSE(list[0].backup);
  CHECK_FALSE(list[0].table);
  CHECK(list[0].pos.line == 4);
  CHECK(list[0].pos.column == 12);
  CHECK(list[1].address == "b:2");
  CHECK(list[1].weight == 3);
  CHECK(list[1].table);
  CHECK(list[1].pos.column == 19);
  CHECK(list[2].address == "c:3");
  CHECK(list[2].backup);
  CHECK(list[2].pos.line == 5);
  CHECK(list[2].pos.column == 3);
  // Printed back as written: strings stay strings, tables tables.
  CHECK(portico::format_option_value(list, portico::OptionType::upstream_list) ==
        "[\"a:1\", { address = \"b:2\", weight = 3 }, { address = \"c:3\", backup = true }]");
  CHECK(portico::to_string(portico::OptionType::upstream_list) == "upstream-list");
}

TEST_CASE("upstream_list: every mistake of every entry, at its place", "[config][upstream_list]") {
  const auto registry = registry_with_lb();
  const auto r = parse(registry, "[1, { weight = 0 }, { address = \"x:1\", port = 2 }, { address = 5, backup = 1 }]");
  CHECK_FALSE(r.config);
  const std::string text = r.errors.to_string();
  CHECK_THAT(text, Contains("t.toml:4:12: \"servers\" in listener #1 must hold address strings or tables such as "
                            "{ address = \"10.0.0.2:5432\", weight = 3 }, not an integer"));
  CHECK_THAT(text, Contains("t.toml:4:26: \"weight\" in an entry of \"servers\" in listener #1 must be from 1 to 256, "
                            "not 0"));
  CHECK_THAT(text, Contains("t.toml:4:15: an entry of \"servers\" in listener #1 is missing the required key "
                            "\"address\""));
  CHECK_THAT(text, Contains("t.toml:4:50: unknown key \"port\" in an entry of \"servers\" in listener #1"));
  CHECK_THAT(text, Contains("t.toml:4:74: \"address\" in an entry of \"servers\" in listener #1 must be a string, not "
                            "an integer"));
  CHECK_THAT(text, Contains("t.toml:4:86: \"backup\" in an entry of \"servers\" in listener #1 must be a boolean (true "
                            "or false), not an integer"));
  CHECK(r.errors.size() == 6);
  const auto not_array = parse(registry, "\"a:1\"");
  CHECK_THAT(not_array.errors.to_string(),
             Contains("t.toml:4:11: \"servers\" in listener #1 must be an array of addresses, not a string"));
}

TEST_CASE("upstream_list values compare by what they say, not where", "[config][upstream_list]") {
  portico::UpstreamEntry a{.address = "a:1", .weight = 2, .backup = false, .table = true, .pos = {1, 1}};
  portico::UpstreamEntry b = a;
  b.pos = {7, 9};
  CHECK(a == b);
  b.weight = 3;
  CHECK_FALSE(a == b);
}
