// Fuzz target: address prefixes of allow/deny ("10.0.0.0/8",
// "2001:db8::/32", "192.0.2.7"), parse_cidr, and parse_ip for the
// addresses they are matched against.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <portico/cidr.hpp>

#include "check.hpp"

namespace {

// IPv4 addresses use the first 4 of the 16 bytes; the rest stay zero so
// that comparing all 16 compares the address.
bool v4_tail_clear(const portico::IpBytes& ip) {
  return !ip.v4 || std::all_of(ip.bytes.begin() + 4, ip.bytes.end(), [](std::uint8_t b) { return b == 0; });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // No byte of an accepted prefix or address is ignored: a NUL would end it
  // for inet_pton.
  const bool has_nul = text.find('\0') != std::string_view::npos;

  std::string error;
  if (const auto cidr = portico::parse_cidr(text, error)) {
    FUZZ_CHECK(!has_nul, cidr->text);
    FUZZ_CHECK(cidr->text == text);
    FUZZ_CHECK(cidr->prefix <= (cidr->network.v4 ? 32u : 128u), cidr->text);
    FUZZ_CHECK(v4_tail_clear(cidr->network), cidr->text);
    // A network has no host bits, and contains itself.
    FUZZ_CHECK(portico::mask(cidr->network, cidr->prefix).bytes == cidr->network.bytes, cidr->text);
    FUZZ_CHECK(cidr->contains(cidr->network), cidr->text);
  } else {
    FUZZ_CHECK(error.starts_with("invalid address prefix \""), error);
  }

  if (const auto ip = portico::parse_ip(text)) {
    FUZZ_CHECK(!has_nul);
    FUZZ_CHECK(v4_tail_clear(*ip));
    // An address alone is the prefix of its full length, which contains it.
    std::string single_error;
    const auto single = portico::parse_cidr(text, single_error);
    FUZZ_CHECK(single && single->contains(*ip), single_error);
  }
  return 0;
}
