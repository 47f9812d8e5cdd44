#pragma once
// Reads the PROXY protocol header (v1 or v2) a load balancer sends before
// the client's data. Internal to the server.

#include <optional>

#include <boost/asio/awaitable.hpp>

#include <portico/endpoint.hpp>
#include <portico/result.hpp>

#include "core/server_connection.hpp"

namespace portico {

// Who a header says the connection is from and to; both empty for a header
// that names no addresses (v1 UNKNOWN, v2 LOCAL or AF_UNSPEC): the
// connection's own endpoints stand then.
struct ProxiedAddresses {
  std::optional<Endpoint> client;
  std::optional<Endpoint> server;
};

// Consumes exactly the header, leaving the client's data for the handler.
// Fails, saying why, on a missing, malformed or too long header, or one not
// complete within `timeout`. A client that stops in the middle of its
// header costs no CPU while it waits.
boost::asio::awaitable<Result<ProxiedAddresses>> read_proxy_header(ServerConnection& connection, Duration timeout);

}  // namespace portico
