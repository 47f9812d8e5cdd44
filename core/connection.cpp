#include <portico/connection.hpp>

#include <sys/socket.h>

namespace portico {

Connection::Connection(const executor_type& executor, int family, int accepted_fd, Endpoint peer,
                       std::string_view listener_name, spdlog::logger& logger)
    : Stream(executor, family, accepted_fd),
      peer_(std::move(peer)),
      listener_name_(listener_name),
      logger_(logger) {}

Connection::~Connection() = default;

const Endpoint& Connection::local() const {
  if (!local_) {
    sockaddr_storage address{};
    socklen_t size = sizeof address;
    // On failure (the connection was closed) the endpoint stays empty.
    if (::getsockname(const_cast<Connection*>(this)->fd(), reinterpret_cast<sockaddr*>(&address), &size) != 0) size = 0;
    local_ = std::make_unique<Endpoint>(endpoint_from(reinterpret_cast<sockaddr*>(&address), size));
  }
  return *local_;
}

void Connection::write_log(spdlog::level::level_enum level, std::string_view text) {
  logger_.log(level, "[{} {}] {}", listener_name_, peer_.to_string(), text);
}

}  // namespace portico
