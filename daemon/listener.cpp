#include "daemon/listener.hpp"

#include <cstring>

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <portico/server.hpp>

namespace portico {

namespace asio = boost::asio;
using boost::system::error_code;
using generic_endpoint = asio::generic::stream_protocol::endpoint;

namespace {

Peer peer_from(const generic_endpoint& endpoint) {
  Peer peer;
  const int family = endpoint.data()->sa_family;
  if (family == AF_INET || family == AF_INET6) {
    asio::ip::tcp::endpoint ip;
    std::memcpy(ip.data(), endpoint.data(), std::min<std::size_t>(endpoint.size(), ip.capacity()));
    peer.ip = ip.address();
    peer.port = ip.port();
  } else {
    peer.is_unix = true;
  }
  return peer;
}

generic_endpoint endpoint_of(const Address& address) {
  if (address.kind == Address::Kind::unix_path) return asio::local::stream_protocol::endpoint(address.path);
  return asio::ip::tcp::endpoint(asio::ip::make_address(address.host), address.port);
}

bool out_of_resources(const error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory;
}

}  // namespace

Listener::Listener(asio::io_context& io, ListenerConfig config, std::unique_ptr<Handler> handler,
                   std::shared_ptr<spdlog::logger> logger, std::shared_ptr<ServerCounters> counters)
    : io_(io),
      config_(std::move(config)),
      handler_(std::move(handler)),
      logger_(std::move(logger)),
      counters_(std::move(counters)),
      acceptor_(io),
      backoff_timer_(io) {}

Listener::~Listener() = default;

void Listener::bind() {
  const auto endpoint = endpoint_of(config_.address);
  const auto fail = [&](std::string_view step, const error_code& ec) {
    error_code ignored;
    acceptor_.close(ignored);
    throw StartError(fmt::format("listener \"{}\": cannot {} {}: {}", config_.name, step,
                                 config_.address.to_string(), ec.message()));
  };
  error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) fail("open a socket for", ec);
  if (config_.address.is_ip()) {
    // Restarting must not wait for the previous run's TIME_WAIT sockets.
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) fail("set SO_REUSEADDR on", ec);
  }
  acceptor_.bind(endpoint, ec);
  if (ec) fail("bind to", ec);
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen on", ec);

  if (config_.address.is_ip()) {
    const Peer local = peer_from(acceptor_.local_endpoint(ec));
    Address real = config_.address;
    real.port = local.port;
    bound_address_ = real.to_string();
  } else {
    bound_address_ = config_.address.to_string();
  }
}

void Listener::start() {
  asio::co_spawn(io_, accept_loop(boost::intrusive_ptr<Listener>(this)), asio::detached);
}

void Listener::stop() {
  stopped_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  backoff_timer_.cancel();
}

void Listener::close_connections() {
  for (auto& connection : live_) connection.close();
}

asio::awaitable<bool> Listener::back_off(const error_code& ec) {
  std::uint64_t suppressed = 0;
  const bool exhausted = out_of_resources(ec);
  if (accept_error_log_.allow(suppressed)) {
    logger_->warn("listener \"{}\": accept failed: {}{}{}", config_.name, ec.message(),
                 exhausted ? " (pausing accepts for 100ms)" : "",
                 suppressed ? fmt::format(" ({} more since the last report)", suppressed) : "");
  }
  // Out of descriptors, the pending connection stays in the backlog and the
  // next accept would fail at once: wait for connections to end instead of
  // spinning. Other errors concern one connection only.
  if (!exhausted) co_return !stopped_;
  backoff_timer_.expires_after(std::chrono::milliseconds(100));
  co_await backoff_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return !stopped_;
}

asio::awaitable<void> Listener::accept_loop(boost::intrusive_ptr<Listener> self) {
  generic_endpoint peer_endpoint;
  while (!self->stopped_) {
    Connection::socket_type socket(self->io_);
    auto [ec] = co_await self->acceptor_.async_accept(socket, peer_endpoint, asio::as_tuple(asio::use_awaitable));
    if (self->stopped_) break;
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      if (!co_await self->back_off(ec)) break;
      continue;
    }
    asio::co_spawn(self->io_, serve(self, std::move(socket), peer_from(peer_endpoint)), asio::detached);
  }
}

asio::awaitable<void> Listener::serve(boost::intrusive_ptr<Listener> self, Connection::socket_type socket,
                                      Peer peer) {
  error_code ec;
  socket.non_blocking(true, ec);
  Connection connection(std::move(socket), std::move(peer), self->config_.name, *self->logger_);
  self->live_.push_back(connection);
  ++self->active_;
  ++self->counters_->connections;

  try {
    co_await self->handler_->serve(connection);
  } catch (const std::exception& e) {
    connection.log(spdlog::level::err, "handler \"{}\" failed: {}", self->config_.handler, e.what());
  }
  // The callback may refer to the handler's finished frame.
  connection.on_close(nullptr);
  connection.close();
  co_await connection.quiesce();

  --self->active_;
  --self->counters_->connections;
  if (self->counters_->on_connection_end) self->counters_->on_connection_end();
}

}  // namespace portico
