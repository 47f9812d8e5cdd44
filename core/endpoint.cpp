#include <portico/endpoint.hpp>

#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

namespace portico {

namespace asio = boost::asio;

std::string Endpoint::to_string() const {
  if (is_unix) return path.empty() ? std::string("unix") : "unix:" + path;
  if (ip.is_v6()) return fmt::format("[{}]:{}", ip.to_string(), port);
  return fmt::format("{}:{}", ip.to_string(), port);
}

asio::ip::address unmapped(const asio::ip::address& ip) {
  if (ip.is_v6() && ip.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, ip.to_v6());
  return ip;
}

Endpoint endpoint_from(const sockaddr* address, std::size_t length) {
  Endpoint out;
  if (address == nullptr || length < sizeof(sa_family_t)) {
    out.is_unix = true;
    return out;
  }
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof in);
    asio::ip::address_v4::bytes_type bytes;
    std::memcpy(bytes.data(), &in.sin_addr, 4);
    out.ip = asio::ip::address_v4(bytes);
    out.port = ntohs(in.sin_port);
    return out;
  }
  if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof in6);
    asio::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), &in6.sin6_addr, 16);
    out.ip = unmapped(asio::ip::address_v6(bytes, in6.sin6_scope_id));
    out.port = ntohs(in6.sin6_port);
    return out;
  }
  out.is_unix = true;
  if (address->sa_family == AF_UNIX && length > offsetof(sockaddr_un, sun_path)) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(address);
    const std::size_t room = length - offsetof(sockaddr_un, sun_path);
    // An abstract socket's name starts with a NUL byte: it has no path.
    if (room > 0 && un->sun_path[0] != '\0') out.path.assign(un->sun_path, strnlen(un->sun_path, room));
  }
  return out;
}

}  // namespace portico
