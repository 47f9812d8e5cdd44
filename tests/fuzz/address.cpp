// Fuzz target: listen addresses as a config writes them ("a.b.c.d:port",
// "[v6]:port", "unix:/path"), parse_address.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <portico/address.hpp>

#include "check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto address = portico::parse_address(text, error);
  if (!address) {
    FUZZ_CHECK(error.starts_with("invalid address \""), error);
    return 0;
  }
  // No byte of an accepted address is ignored, and a NUL would end it for
  // every C function it is handed to (inet_pton, bind's sun_path).
  FUZZ_CHECK(text.find('\0') == std::string_view::npos, address->to_string());

  // The canonical spelling parses to the same address and spells itself.
  const std::string canonical = address->to_string();
  std::string again_error;
  const auto again = portico::parse_address(canonical, again_error);
  FUZZ_CHECK(again && *again == *address, canonical + ": " + again_error);
  FUZZ_CHECK(again->to_string() == canonical, canonical);
  return 0;
}
