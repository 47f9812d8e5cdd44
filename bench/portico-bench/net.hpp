#pragma once
// Socket plumbing: resolving the target once, picking source addresses, and
// starting non-blocking connects.

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

#include "parse.hpp"

namespace bench {

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family() const { return addr.ss_family; }
  std::string to_string() const;
};

// Resolves host:port once up front (numeric addresses or names).
std::optional<Endpoint> resolve(const std::string& host, std::uint16_t port, std::string& error);

// Hands out the addresses of a SourceRange in turn. Binding before connect
// gives every source address its own ~28k ephemeral ports, which is what
// lets idle mode hold far more connections than one address could.
class SourcePicker {
 public:
  SourcePicker() = default;
  explicit SourcePicker(const SourceRange& range) : range_(range) {}
  bool enabled() const { return range_.has_value(); }
  Endpoint next();

 private:
  std::optional<SourceRange> range_;
  std::uint64_t next_ = 0;
};

// Creates a non-blocking socket, binds it to a source address if the picker
// has any, and starts connecting. Returns the fd (connect in progress or
// done), or -1 with errno set.
int start_connect(const Endpoint& target, SourcePicker& sources);

// The pending error of a socket (SO_ERROR), 0 if none.
int socket_error(int fd);

}  // namespace bench
