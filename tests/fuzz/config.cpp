// Fuzz target: the whole config load, as `porticod --check` does it: TOML,
// then every check of [daemon] and the listeners with the built-in handler
// types (no plugins). Names in the input are looked up on this system
// (users, groups, exec commands in PATH): lookups only, nothing is changed.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <portico/config.hpp>
#include <portico/registry.hpp>

#include "check.hpp"

namespace {

const portico::Registry& builtin_registry() {
  static const portico::Registry registry = [] {
    portico::Registry r;
    portico::register_builtin_handlers(r);
    return r;
  }();
  return registry;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto& registry = builtin_registry();
  const auto result = portico::parse_config(text, "fuzz.toml", registry);

  // Every mistake is shown as FILE:LINE:COL.
  for (const auto& d : result.errors.all()) {
    FUZZ_CHECK(d.pos.line >= 1 && d.pos.column >= 1, d.to_string());
  }
  if (!result.config) {
    FUZZ_CHECK(!result.errors.empty());
    return 0;
  }
  FUZZ_CHECK(result.errors.empty(), result.errors.to_string());

  // `porticod --print-config` prints a config that loads again to the same
  // settings, so printing that one gives the same text.
  const std::string printed = portico::print_config(*result.config, registry);
  const auto again = portico::parse_config(printed, "fuzz.toml", registry);
  FUZZ_CHECK(again.config, again.errors.to_string() + printed);
  FUZZ_CHECK(portico::print_config(*again.config, registry) == printed, printed);
  return 0;
}
