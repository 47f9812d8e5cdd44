#include <portico/cidr.hpp>
#include <portico/endpoint.hpp>

#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include <portico/text.hpp>

namespace portico {

std::optional<IpBytes> parse_ip(std::string_view text) {
  // inet_pton would stop at a NUL and ignore whatever follows it. Zone
  // indices ("fe80::1%eth0") name an interface, not an address; one naming
  // an interface this machine lacks would be dropped without a word.
  if (text.find('\0') != std::string_view::npos || text.find('%') != std::string_view::npos) return std::nullopt;
  boost::system::error_code ec;
  const auto ip = boost::asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return ip_bytes(ip);
}

IpBytes ip_bytes(const boost::asio::ip::address& address) {
  const auto ip = unmapped(address);
  IpBytes out;
  if (ip.is_v4()) {
    const auto b = ip.to_v4().to_bytes();
    std::memcpy(out.bytes.data(), b.data(), 4);
    out.v4 = true;
  } else {
    const auto b = ip.to_v6().to_bytes();
    std::memcpy(out.bytes.data(), b.data(), 16);
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

Result<Cidr> parse_cidr(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) {
    return fail("invalid address prefix {}: contains a NUL character", quote_text(text));
  }
  const auto slash = text.find('/');
  const auto address = text.substr(0, slash);
  auto ip = parse_ip(address);
  if (!ip) {
    return fail("invalid address prefix {}: {} is not an IPv4 or IPv6 address", quote_text(text),
                quote_text(address));
  }
  const bool written_v6 = address.find(':') != std::string_view::npos;
  const unsigned max = written_v6 ? 128 : 32;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || prefix > max) {
      return fail("invalid address prefix {}: the length after \"/\" must be from 0 to {}", quote_text(text),
                  max);
    }
  }
  // "::ffff:10.0.0.0/104" reads as 10.0.0.0/8.
  if (ip->v4 && written_v6) {
    if (prefix < 96) {
      return fail("invalid address prefix {}: an IPv4-mapped prefix must be at least /96", quote_text(text));
    }
    prefix -= 96;
  }
  const IpBytes network = mask(*ip, prefix);
  if (network.bytes != ip->bytes) {
    return fail("invalid address prefix {}: host bits are set after /{}", quote_text(text), prefix);
  }
  return Cidr{network, prefix, std::string(text)};
}

}  // namespace portico
