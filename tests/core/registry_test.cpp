#include <catch2/catch.hpp>

#include <portico/config.hpp>
#include <portico/connection.hpp>
#include <portico/registry.hpp>

namespace {

class Nothing final : public portico::Handler {
 public:
  boost::asio::awaitable<void> serve(portico::Connection&) override { co_return; }
};

portico::HandlerType nothing_type(std::string name) {
  return portico::HandlerType{
      .name = std::move(name),
      .doc = "does nothing",
      .options = {{.name = "level", .type = portico::OptionType::integer, .default_value = std::int64_t{3},
                   .doc = "how much"}},
      .create = [](const portico::Options&) { return std::make_unique<Nothing>(); },
  };
}

}  // namespace

TEST_CASE("the registry finds types by name and lists them in order", "[registry]") {
  portico::Registry r;
  r.add(nothing_type("zeta"));
  r.add(nothing_type("alpha"));
  REQUIRE(r.find("zeta") != nullptr);
  CHECK(r.find("zeta")->doc == "does nothing");
  CHECK(r.find("missing") == nullptr);
  CHECK(r.names() == std::vector<std::string>{"alpha", "zeta"});
}

TEST_CASE("the registry refuses duplicates and incomplete types", "[registry]") {
  portico::Registry r;
  r.add(nothing_type("x"));
  CHECK_THROWS_WITH(r.add(nothing_type("x")), "handler type \"x\" is registered twice");
  auto no_factory = nothing_type("y");
  no_factory.create = nullptr;
  CHECK_THROWS_WITH(r.add(no_factory), "handler type \"y\" has no factory");
  auto twice = nothing_type("z");
  twice.options.push_back(twice.options[0]);
  CHECK_THROWS_WITH(r.add(twice), "handler type \"z\" declares option \"level\" twice");
  CHECK_THROWS_AS(r.add(nothing_type("")), std::invalid_argument);
}

TEST_CASE("describe() prints each type and its options from the schema", "[registry]") {
  portico::Registry r;
  r.add(nothing_type("nothing"));
  CHECK(r.describe() ==
        "nothing: does nothing\n"
        "    level  integer        3  how much\n");
}

TEST_CASE("a registered type validates options in a config", "[registry][config]") {
  portico::Registry r;
  r.add(nothing_type("nothing"));
  r.add(portico::HandlerType{
      .name = "picky",
      .doc = "rejects odd levels",
      .options = {{.name = "level", .type = portico::OptionType::integer, .default_value = std::int64_t{2},
                   .doc = "even"}},
      .create = [](const portico::Options&) { return std::make_unique<Nothing>(); },
      .validate =
          [](const portico::Options& o, portico::Diagnostics& errors) {
            if (o.integer("level") % 2) errors.error(o.position("level"), "\"level\" must be even");
          },
  });
  const auto ok = portico::parse_config("[[listener]]\naddress = \"127.0.0.1:1\"\nhandler = \"nothing\"\nlevel = 7\n",
                                        "t.toml", r);
  REQUIRE(ok.config);
  CHECK(ok.config->listeners[0].options.integer("level") == 7);
  const auto bad = portico::parse_config("[[listener]]\naddress = \"127.0.0.1:1\"\nhandler = \"picky\"\nlevel = 7\n",
                                         "t.toml", r);
  REQUIRE_FALSE(bad.config);
  CHECK(bad.errors.to_string() == "t.toml:4:9: \"level\" must be even\n");
}
