#pragma once
// Reads the PROXY protocol header (v1 or v2) a load balancer sends before
// the client's data, and makes the client it names the connection's peer.
// Internal to the server.

#include <string>

#include <boost/asio/awaitable.hpp>

#include <portico/connection.hpp>

namespace portico {

// Consumes exactly the header, leaving the client's data for the handler.
// Returns an empty string on success, or why the header was refused
// (missing, malformed, too long, not complete within `timeout`).
boost::asio::awaitable<std::string> read_proxy_header(Connection& connection, Duration timeout);

}  // namespace portico
