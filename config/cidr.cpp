#include <portico/cidr.hpp>

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace portico {

std::optional<IpBytes> parse_ip(std::string_view text) {
  // inet_pton would stop at a NUL and ignore whatever follows it.
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  const std::string s(text);
  IpBytes out;
  if (inet_pton(AF_INET, s.c_str(), out.bytes.data()) == 1) {
    out.v4 = true;
    return out;
  }
  if (inet_pton(AF_INET6, s.c_str(), out.bytes.data()) != 1) return std::nullopt;
  static constexpr std::uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(out.bytes.data(), mapped_prefix, 12) == 0) {
    std::memmove(out.bytes.data(), out.bytes.data() + 12, 4);
    std::memset(out.bytes.data() + 4, 0, 12);
    out.v4 = true;
  }
  return out;
}

IpBytes mask(const IpBytes& ip, unsigned prefix) {
  IpBytes out = ip;
  const unsigned total = ip.v4 ? 32 : 128;
  for (unsigned bit = prefix; bit < total; ++bit) out.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  if (ip.v4) std::memset(out.bytes.data() + 4, 0, 12);
  return out;
}

bool Cidr::contains(const IpBytes& ip) const {
  if (ip.v4 != network.v4) return false;
  return mask(ip, prefix).bytes == network.bytes;
}

std::optional<Cidr> parse_cidr(std::string_view text, std::string& error) {
  if (text.find('\0') != std::string_view::npos) {
    std::string shown;
    for (const char c : text) shown += c == '\0' ? std::string_view("\\u0000") : std::string_view(&c, 1);
    error = fmt::format("invalid address prefix \"{}\": contains a NUL character", shown);
    return std::nullopt;
  }
  const auto slash = text.find('/');
  const auto address = text.substr(0, slash);
  auto ip = parse_ip(address);
  if (!ip) {
    error = fmt::format("invalid address prefix \"{}\": \"{}\" is not an IPv4 or IPv6 address", text, address);
    return std::nullopt;
  }
  const bool written_v6 = address.find(':') != std::string_view::npos;
  const unsigned max = written_v6 ? 128 : 32;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || prefix > max) {
      error = fmt::format("invalid address prefix \"{}\": the length after \"/\" must be from 0 to {}", text, max);
      return std::nullopt;
    }
  }
  // "::ffff:10.0.0.0/104" reads as 10.0.0.0/8.
  if (ip->v4 && written_v6) {
    if (prefix < 96) {
      error = fmt::format("invalid address prefix \"{}\": an IPv4-mapped prefix must be at least /96", text);
      return std::nullopt;
    }
    prefix -= 96;
  }
  const IpBytes network = mask(*ip, prefix);
  if (network.bytes != ip->bytes) {
    error = fmt::format("invalid address prefix \"{}\": host bits are set after /{}", text, prefix);
    return std::nullopt;
  }
  return Cidr{network, prefix, std::string(text)};
}

}  // namespace portico
