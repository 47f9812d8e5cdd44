#pragma once
// The server's side of a Connection: what the listener keeps about each one
// and may do to it, beyond what a handler sees. Internal to the server.

#include <optional>

#include <boost/intrusive/list_hook.hpp>

#include <portico/cidr.hpp>
#include <portico/connection.hpp>

#include "core/service.hpp"

namespace portico {

class ServerConnection final : public Connection {
 public:
  ServerConnection(const executor_type& executor, int family, int accepted_fd, const Endpoint& peer,
                   ServicePtr service, spdlog::logger& logger, const Server* server, bool observed)
      : Connection(executor, family, accepted_fd, peer, service->config.name, logger), service_(std::move(service)) {
    server_ = server;
    if (observed) annotations_ = std::make_unique<std::vector<std::pair<std::string, std::string>>>();
  }

  const ServicePtr& service() const { return service_; }
  const ListenerConfig& config() const { return service_->config; }

  // The client and the address it connected to, as a PROXY protocol header
  // named them.
  void set_client(const Endpoint& peer, const std::optional<Endpoint>& local) {
    socket_peer_ = std::make_unique<Endpoint>(std::exchange(peer_, peer));
    if (local) local_ = std::make_unique<Endpoint>(*local);
  }
  // The address the client reached, when the listener knows it without
  // asking the socket.
  void set_local(const Endpoint& local) { local_ = std::make_unique<Endpoint>(local); }
  // The socket's own peer when a PROXY header named another client.
  const Endpoint* socket_peer() const { return socket_peer_.get(); }
  bool observed() const { return annotations_ != nullptr; }
  const std::vector<std::pair<std::string, std::string>>& annotations() const { return *annotations_; }

  // Closed by the server (a shutdown, a removed listener's drain), not by
  // the handler or a timeout.
  void close_by_server() {
    closed_by_server_ = true;
    close();
  }
  bool closed_by_server() const { return closed_by_server_; }
  bool eof_received() const { return eof_received_; }
  const boost::system::error_code& failure() const { return failure_; }

  using Stream::accept_tls;
  using Stream::arm;
  using Stream::disarm;
  using Stream::fd;
  using Stream::readable_now;
  using Stream::registered_socket;

  // Turned away before its handler ran (a PROXY header, a TLS handshake):
  // reported as a refusal, not as an ended connection.
  bool refused = false;
  // The max_per_source slot the connection holds, if any.
  std::optional<IpBytes> source;
  // Links every live connection of a listener so that a shutdown can close
  // them.
  boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> live_hook;

 private:
  ServicePtr service_;
  std::unique_ptr<Endpoint> socket_peer_;
  bool closed_by_server_ = false;
};

}  // namespace portico
