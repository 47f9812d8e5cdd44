#include "net.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace bench {

std::string Endpoint::to_string() const {
  char text[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    return fmt::format("{}:{}", text, ntohs(a->sin_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
  inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
  return fmt::format("[{}]:{}", text, ntohs(a->sin6_port));
}

std::optional<Endpoint> resolve(const std::string& host, std::uint16_t port, std::string& error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    error = fmt::format("cannot resolve '{}': {}", host, gai_strerror(rc));
    return std::nullopt;
  }
  Endpoint ep;
  std::memcpy(&ep.addr, found->ai_addr, found->ai_addrlen);
  ep.len = found->ai_addrlen;
  freeaddrinfo(found);
  return ep;
}

Endpoint SourcePicker::next() {
  Endpoint ep;
  const auto& r = *range_;
  if (r.family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ep.addr);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(static_cast<std::uint32_t>(r.first + next_++ % r.size()));
    ep.len = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ep.addr);
    a->sin6_family = AF_INET6;
    a->sin6_addr = r.v6;
    ep.len = sizeof(sockaddr_in6);
  }
  return ep;
}

int start_connect(const Endpoint& target, SourcePicker& sources) {
  const int fd = socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (sources.enabled()) {
    const Endpoint src = sources.next();
    // Without this, bind() would reserve a port for the address alone, and
    // the ports would run out after ~28k sockets whatever the range.
    const int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&src.addr), src.len) != 0) {
      const int err = errno;
      close(fd);
      errno = err;
      return -1;
    }
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&target.addr), target.len) != 0 && errno != EINPROGRESS) {
    const int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

}  // namespace bench
