#include "daemon/listener.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <portico/server.hpp>

#include "daemon/proxy_header_reader.hpp"

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

bool out_of_resources(const error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory;
}

std::string suppressed_note(std::uint64_t suppressed) {
  return suppressed ? fmt::format(" ({} more since the last report)", suppressed) : std::string();
}

}  // namespace

Listener::Listener(asio::io_context& io, boost::intrusive_ptr<Service> service, std::shared_ptr<spdlog::logger> logger,
                   std::shared_ptr<ServerCounters> counters)
    : io_(io),
      service_(std::move(service)),
      logger_(std::move(logger)),
      counters_(std::move(counters)),
      acceptor_(io),
      wait_timer_(io) {}

Listener::~Listener() {
  if (acceptor_.is_open()) stop();
}

std::chrono::seconds Listener::defer_accept() const {
  return defer_accept_of(config(), config().proxy_protocol || service_->handler->waits_for_client().has_value());
}

void Listener::bind(std::optional<int> inherited_fd) {
  if (inherited_fd) {
    adopt_listen_socket(acceptor_, config(), *inherited_fd, defer_accept());
  } else {
    bind_listen_socket(acceptor_, config(), defer_accept());
    owns_unix_path_ = !config().address.is_ip();
  }
  bound_address_ = portico::bound_address(acceptor_, config());
  protocol_ = acceptor_.local_endpoint().protocol();
}

AcceptedFd::~AcceptedFd() {
  if (fd_ >= 0) ::close(fd_);
}

void Listener::start() {
  asio::co_spawn(io_, accept_loop(boost::intrusive_ptr<Listener>(this)), asio::detached);
}

void Listener::stop() {
  stopped_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  wait_timer_.cancel();
  if (owns_unix_path_) {
    ::unlink(config().address.path.c_str());
    owns_unix_path_ = false;
  }
}

void Listener::close_connections() {
  for (auto& connection : live_) connection.close();
}

void Listener::update(boost::intrusive_ptr<Service> service) {
  service_ = std::move(service);
  apply_listen_options(acceptor_, config(), defer_accept());
  resume();
}

void Listener::resume() {
  if (paused_) wait_timer_.cancel();
}

bool Listener::at_capacity() const {
  const std::size_t max = config().max_connections;
  return (max != 0 && active_ >= max) || counters_->full();
}

void Listener::refuse(std::uint64_t& counter, const Peer& peer, std::string_view why) {
  ++counter;
  std::uint64_t suppressed = 0;
  if (refusal_log_.allow(suppressed)) {
    logger_->warn("listener \"{}\": refused {}: {}{}", config().name, peer.to_string(), why,
                  suppressed_note(suppressed));
  }
}

bool Listener::admit_client(const Service& service, const Peer& peer, std::optional<IpBytes>& source) {
  const auto& config = service.config;
  if (peer.is_unix) return true;
  if (config.allow.empty() && config.deny.empty() && config.max_per_source == 0) return true;
  const IpBytes ip = to_ip_bytes(peer.ip);
  if (const auto verdict = check_access(config, ip); !verdict.allowed) {
    refuse(stats_.refused_access, peer, verdict.reason);
    return false;
  }
  if (config.max_per_source != 0) {
    source = sources_.acquire(ip, config);
    if (!source) {
      refuse(stats_.refused_per_source, peer,
             fmt::format("max_per_source ({}) reached for its address", config.max_per_source));
      return false;
    }
  }
  return true;
}

asio::awaitable<bool> Listener::back_off(const error_code& ec) {
  std::uint64_t suppressed = 0;
  const bool exhausted = out_of_resources(ec);
  if (accept_error_log_.allow(suppressed)) {
    logger_->warn("listener \"{}\": accept failed: {}{}{}", config().name, ec.message(),
                  exhausted ? " (pausing accepts for 100ms)" : "", suppressed_note(suppressed));
  }
  // Out of descriptors, the pending connection stays in the backlog and the
  // next accept would fail at once: wait for connections to end instead of
  // spinning. Other errors concern one connection only.
  if (!exhausted) co_return !stopped_;
  wait_timer_.expires_after(std::chrono::milliseconds(100));
  co_await wait_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return !stopped_;
}

asio::awaitable<void> Listener::wait_for_capacity() {
  while (!stopped_ && at_capacity() && config().on_limit == OnLimit::pause) {
    if (!paused_) {
      ++stats_.refused_limit;
      std::uint64_t suppressed = 0;
      if (refusal_log_.allow(suppressed)) {
        const bool own = config().max_connections != 0 && active_ >= config().max_connections;
        logger_->warn("listener \"{}\": {} reached; pausing accepts until a connection ends{}", config().name,
                      own ? fmt::format("max_connections ({})", config().max_connections)
                          : fmt::format("[daemon] max_connections ({})", counters_->max_connections),
                      suppressed_note(suppressed));
      }
    }
    paused_ = true;
    wait_timer_.expires_at(asio::steady_timer::time_point::max());
    co_await wait_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  paused_ = false;
}

asio::awaitable<void> Listener::accept_loop(boost::intrusive_ptr<Listener> self) {
  // Connections taken in a row before the loop lets the io_context run
  // everything else: a flood of new clients cannot starve the open ones.
  constexpr int accepts_per_turn = 32;
  int in_a_row = 0;
  {
    // accept4() must not block when the backlog is empty.
    error_code ec;
    self->acceptor_.non_blocking(true, ec);
    if (ec) {
      self->logger_->error("listener \"{}\": cannot make the listening socket non-blocking: {}; not accepting",
                           self->config().name, ec.message());
      co_return;
    }
  }
  while (!self->stopped_) {
    co_await self->wait_for_capacity();
    if (self->stopped_) break;
    // accept4() directly, rather than async_accept: the socket arrives
    // non-blocking and close-on-exec in one system call, and the reactor is
    // asked to wait only when the backlog is empty.
    sockaddr_storage address{};
    socklen_t address_size = sizeof address;
    const int fd = ::accept4(self->acceptor_.native_handle(), reinterpret_cast<sockaddr*>(&address), &address_size,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        in_a_row = 0;
        auto [ec] = co_await self->acceptor_.async_wait(Acceptor::wait_read, asio::as_tuple(asio::use_awaitable));
        if (self->stopped_ || ec == asio::error::operation_aborted) break;
        if (ec && !co_await self->back_off(ec)) break;
        continue;
      }
      // The client gave up before we took it, or a signal: nothing to report.
      if (err == EINTR || err == ECONNABORTED) continue;
      if (!co_await self->back_off(error_code(err, asio::error::get_system_category()))) break;
      continue;
    }
    if (++in_a_row >= accepts_per_turn) {
      in_a_row = 0;
      co_await asio::post(self->io_, asio::use_awaitable);
    }
    AcceptedFd accepted(fd);
    generic_endpoint peer_endpoint(&address, address_size);
    const Peer peer = peer_from(peer_endpoint);
    const boost::intrusive_ptr<Service> service = self->service_;
    const ListenerConfig& config = service->config;
    // Refusals close the socket as it goes out of scope, before any handler
    // or coroutine frame exists for it.
    if (config.rate != 0 && !self->rate_.take(config.rate, config.burst)) {
      self->refuse(self->stats_.refused_rate, peer, fmt::format("rate ({}/s) exceeded", config.rate));
      continue;
    }
    if (self->at_capacity()) {
      self->refuse(self->stats_.refused_limit, peer, "max_connections reached");
      continue;
    }
    std::optional<IpBytes> source;
    // Behind a PROXY header the client is known only once the header is read.
    if (!config.proxy_protocol && !self->admit_client(*service, peer, source)) continue;
    ++self->stats_.accepted;
    auto connection = std::make_unique<Connection>(self->io_.get_executor(), self->protocol_, accepted.release(), peer,
                                                   config.name, *self->logger_);
    self->live_.push_back(*connection);
    ++self->active_;
    ++self->counters_->connections;
    connection->set_idle_timeout(config.idle_timeout);
    if (config.session_timeout.count() > 0) {
      connection->set_session_deadline(Connection::clock::now() + config.session_timeout);
    }
    const std::optional<Duration> wait = config.proxy_protocol ? std::nullopt : service->handler->waits_for_client();
    // Usually the request is there by the time the connection is accepted:
    // then the handler starts at once and the connection never touches the
    // reactor (no registration, no wait, and a close that needs no
    // deregistration).
    if (wait && !connection->client_spoke()) {
      wait_for_client(self, service, std::move(connection), source, *wait);
    } else {
      asio::co_spawn(self->io_, serve(self, service, std::move(connection), source), asio::detached);
    }
  }
}

// Holds a connection whose handler waits for the client to speak first, with
// no coroutine until the client does: a completion handler of a few pointers,
// the reactor's operation and the Connection itself.
void Listener::wait_for_client(boost::intrusive_ptr<Listener> self, boost::intrusive_ptr<Service> service,
                               std::unique_ptr<Connection> connection, std::optional<IpBytes> source, Duration limit) {
  Connection& conn = *connection;
  Connection::socket_type& socket = conn.registered_socket();
  const bool armed = conn.arm(limit);
  socket.async_wait(Connection::socket_type::wait_read,
                    [self = std::move(self), service = std::move(service), connection = std::move(connection), source,
                     armed](const error_code&) mutable {
                      if (armed) connection->disarm();
                      auto& io = self->io_;
                      asio::co_spawn(io, serve(std::move(self), std::move(service), std::move(connection), source),
                                     asio::detached);
                    });
}

asio::awaitable<void> Listener::serve(boost::intrusive_ptr<Listener> self, boost::intrusive_ptr<Service> service,
                                      std::unique_ptr<Connection> owned, std::optional<IpBytes> source) {
  const ListenerConfig& config = service->config;
  Connection& connection = *owned;

  bool admitted = true;
  if (config.proxy_protocol) {
    const Peer before = connection.peer();
    std::string error = co_await read_proxy_header(connection, config.proxy_protocol_timeout);
    if (!error.empty()) {
      self->refuse(self->stats_.refused_proxy_header, before, error);
      admitted = false;
    } else {
      admitted = self->admit_client(*service, connection.peer(), source);
    }
  }
  // A wait for the client's first bytes may have ended with the listener's
  // own timeout, or with the connection closed by a shutdown: then there is
  // nothing for the handler to do.
  const auto before_handler = connection.expired();
  if (!connection.is_open() || before_handler == Connection::Deadline::idle ||
      before_handler == Connection::Deadline::session) {
    admitted = false;
  }
  if (admitted) {
    try {
      co_await service->handler->serve(connection);
    } catch (const std::exception& e) {
      connection.log(spdlog::level::err, "handler \"{}\" failed: {}", config.handler, e.what());
    }
  }
  if (const auto expired = connection.expired(); expired != Connection::Deadline::none) {
    std::uint64_t suppressed = 0;
    if (expired != Connection::Deadline::call && self->timeout_log_.allow(suppressed)) {
      connection.log(spdlog::level::info, "closed: timed out ({} {}){}",
                     expired == Connection::Deadline::idle ? "idle_timeout" : "session_timeout",
                     format_duration(expired == Connection::Deadline::idle ? config.idle_timeout
                                                                           : config.session_timeout),
                     suppressed_note(suppressed));
    }
  }
  // The callback may refer to the handler's finished frame.
  connection.on_close(nullptr);
  connection.close();
  co_await connection.quiesce();

  if (source) self->sources_.release(*source);
  --self->active_;
  --self->counters_->connections;
  self->resume();
  if (self->counters_->on_connection_end) self->counters_->on_connection_end();
}

}  // namespace portico
