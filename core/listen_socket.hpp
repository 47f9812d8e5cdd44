#pragma once
// Setting up a listener's socket: binding a new one (IP or Unix, replacing a
// stale Unix socket file), or adopting one inherited from systemd. Internal.

#include <chrono>
#include <string>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>

#include <portico/config.hpp>
#include <portico/result.hpp>

namespace portico {

using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol>;

// How long the kernel holds a new connection until its first bytes come
// (TCP_DEFER_ACCEPT); zero for none. `client_first`: the listener's clients
// speak before the server does, which is what "auto" looks at.
std::chrono::seconds defer_accept_of(const ListenerConfig& config, bool client_first);

// Opens, configures, binds and listens. A failure names the listener, the
// address and the OS error; the acceptor is closed then.
Result<void> bind_listen_socket(Acceptor& acceptor, const ListenerConfig& config, std::chrono::seconds defer_accept);

// Takes over a listening socket passed by systemd (LISTEN_FDS) and applies
// the listener's options to it.
Result<void> adopt_listen_socket(Acceptor& acceptor, const ListenerConfig& config, int fd, std::chrono::seconds defer_accept);

// Applies what can change on a listening socket without rebinding: the
// options accepted sockets inherit (TCP_NODELAY, SO_KEEPALIVE), the deferred
// accept and the backlog. A failure leaves the socket open.
Result<void> apply_listen_options(Acceptor& acceptor, const ListenerConfig& config, std::chrono::seconds defer_accept);

// The address as bound: "127.0.0.1:40123" when port 0 was asked.
std::string bound_address(const Acceptor& acceptor, const ListenerConfig& config);

// True when `fd` is a listening stream socket bound to `address`; port 0
// (any free port) matches every port of the address's host.
bool socket_matches(int fd, const Address& address);

}  // namespace portico
