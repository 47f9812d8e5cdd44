#include "core/listener.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include <portico/io.hpp>

#include "core/proxy_header_reader.hpp"

namespace portico {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

bool out_of_resources(const error_code& ec) {
  return ec == asio::error::no_descriptors || ec.value() == ENFILE || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory;
}

std::string suppressed_note(std::uint64_t suppressed) {
  return suppressed ? fmt::format(" ({} more since the last report)", suppressed) : std::string();
}

// How long a stopping listener may still find clients the kernel held back
// for TCP_DEFER_ACCEPT: they arrive when they send, or once the deferral is
// over and the kernel's next SYN-ACK is answered, about a second later.
Duration deferred_arrival(std::chrono::seconds defer) {
  return defer.count() == 0 ? Duration(0) : std::chrono::duration_cast<Duration>(defer + std::chrono::seconds(1));
}

}  // namespace

Listener::Listener(asio::io_context& io, ServicePtr service, std::shared_ptr<spdlog::logger> logger,
                   std::shared_ptr<ServerCounters> counters)
    : io_(io),
      service_(std::move(service)),
      logger_(std::move(logger)),
      shared_(std::move(counters)),
      acceptor_(io),
      wait_timer_(io),
      timeout_log_(std::chrono::seconds(1)) {}

Listener::~Listener() {
  if (acceptor_.is_open()) stop();
}

std::chrono::seconds Listener::defer_accept() const {
  // A TLS client speaks first too: its ClientHello.
  return defer_accept_of(config(), config().proxy_protocol || config().tls ||
                                       service_->handler->client_speaks_first().has_value());
}

Result<void> Listener::bind(std::optional<int> inherited_fd) {
  Result<void> bound = inherited_fd ? adopt_listen_socket(acceptor_, config(), *inherited_fd, defer_accept())
                                    : bind_listen_socket(acceptor_, config(), defer_accept());
  if (!bound) return bound;
  owns_unix_path_ = !inherited_fd && !config().address.is_ip();
  bound_address_ = portico::bound_address(acceptor_, config());
  const auto local = acceptor_.local_endpoint();
  family_ = local.protocol().family();
  // A socket accepted on a listener bound to one address (or a Unix path)
  // has that address: the access log need not ask the kernel for it.
  Endpoint fixed = endpoint_from(local.data(), local.size());
  const bool wildcard = !fixed.is_unix && fixed.ip.is_unspecified();
  accepted_local_ = wildcard ? std::nullopt : std::optional<Endpoint>(std::move(fixed));
  return {};
}

void Listener::start() {
  asio::co_spawn(io_, accept_loop(boost::intrusive_ptr<Listener>(this)), asio::detached);
}

void Listener::stop() {
  if (drain_until_) {
    drain_until_.reset();
    --shared_->draining_listeners;
    asio::post(io_, [shared = shared_] {
      if (shared->on_change) shared->on_change();
    });
  }
  stopped_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  wait_timer_.cancel();
  if (owns_unix_path_) {
    ::unlink(config().address.path.c_str());
    owns_unix_path_ = false;
  }
}

void Listener::stop_gracefully(Duration limit) {
  if (stopped_ || drain_until_) return;
  const Duration window = std::min(limit, deferred_arrival(defer_accept()));
  // Clients held back by the kernel until their first bytes come are let
  // through at once from now on.
  if (defer_accept().count() > 0) {
    const int off = 0;
    ::setsockopt(acceptor_.native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &off, sizeof off);
  }
  const auto now = std::chrono::steady_clock::now();
  drain_until_ = now + window;
  drain_limit_ = now + limit;
  ++shared_->draining_listeners;
  // The accept loop sees the drain at its next wait; wake it if it waits.
  error_code ignored;
  acceptor_.cancel(ignored);
  wait_timer_.cancel();
}

void Listener::close_connections() {
  for (auto& connection : live_) connection.close_by_server();
}

Result<void> Listener::update(ServicePtr service) {
  ServicePtr previous = std::exchange(service_, std::move(service));
  if (auto applied = apply_listen_options(acceptor_, config(), defer_accept()); !applied) {
    service_ = std::move(previous);
    return applied;
  }
  resume();
  return {};
}

void Listener::resume() {
  if (paused_) wait_timer_.cancel();
}

bool Listener::at_capacity() const {
  const std::size_t max = config().max_connections;
  return (max != 0 && active_ >= max) || shared_->full();
}

void Listener::refuse(Refusal reason, const Endpoint& peer, std::string_view why, const Endpoint* socket_peer) {
  ++counters_.refused[static_cast<std::size_t>(reason)];
  std::uint64_t suppressed = 0;
  const bool observed = shared_->observer && config().access_log;
  if (!refusal_log_.allow(suppressed, io_.get_executor(), [log = logger_, name = config().name](std::uint64_t n) {
        log->warn("listener \"{}\": ... and {} more refused since the last report", name, n);
      })) {
    if (observed) ++refusals_unrecorded_;
    return;
  }
  logger_->warn("listener \"{}\": refused {}: {}{}", config().name, peer.to_string(), why,
                suppressed_note(suppressed));
  if (observed) {
    // The warning's summary reports refusals the access log does not see:
    // its own count goes on until the next record.
    shared_->observer->connection_refused(RefusalRecord{config().name, config().handler, peer, socket_peer, reason,
                                                        why, std::exchange(refusals_unrecorded_, 0)});
  }
}

bool Listener::admit_client(const ListenerConfig& config, const Endpoint& peer, std::optional<IpBytes>& source,
                            const Endpoint* socket_peer) {
  if (peer.is_unix) return true;
  if (config.allow.empty() && config.deny.empty() && config.max_per_source == 0) return true;
  const IpBytes ip = ip_bytes(peer.ip);
  if (const auto verdict = check_access(config, ip); !verdict.allowed) {
    refuse(Refusal::access, peer, verdict.reason, socket_peer);
    return false;
  }
  if (config.max_per_source != 0) {
    source = sources_.acquire(ip, config);
    if (!source) {
      refuse(Refusal::max_per_source, peer,
             fmt::format("max_per_source ({}) reached for its address", config.max_per_source), socket_peer);
      return false;
    }
  }
  return true;
}

asio::awaitable<bool> Listener::back_off(const error_code& ec) {
  std::uint64_t suppressed = 0;
  const bool exhausted = out_of_resources(ec);
  if (accept_error_log_.allow(suppressed, io_.get_executor(), [log = logger_, name = config().name](std::uint64_t n) {
        log->warn("listener \"{}\": ... and {} more failed accepts since the last report", name, n);
      })) {
    logger_->warn("listener \"{}\": accept failed: {}{}{}", config().name, ec.message(),
                  exhausted ? " (pausing accepts for 100ms)" : "", suppressed_note(suppressed));
  }
  // Out of descriptors, the pending connection stays in the backlog and the
  // next accept would fail at once: wait for connections to end instead of
  // spinning. Other errors concern one connection only.
  if (!exhausted) co_return !stopped_;
  wait_timer_.expires_after(std::chrono::milliseconds(100));
  co_await wait_timer_.async_wait(use_tuple);
  co_return !stopped_;
}

asio::awaitable<void> Listener::wait_until_accepting() {
  for (;;) {
    const bool full = at_capacity() && config().on_limit == OnLimit::pause;
    // A draining stop takes what the kernel holds even from a disabled
    // listener.
    const bool disabled = disabled_ && !drain_until_;
    if (stopped_ || (!full && !disabled)) break;
    if (full && !paused_) {
      ++counters_.refused[static_cast<std::size_t>(Refusal::max_connections)];
      std::uint64_t suppressed = 0;
      if (refusal_log_.allow(suppressed)) {
        const bool own = config().max_connections != 0 && active_ >= config().max_connections;
        logger_->warn("listener \"{}\": {} reached; pausing accepts until a connection ends{}", config().name,
                      own ? fmt::format("max_connections ({})", config().max_connections)
                          : fmt::format("[daemon] max_connections ({})", shared_->max_connections),
                      suppressed_note(suppressed));
      }
    }
    paused_ = full;
    // A draining listener waits for capacity while a deferred client may
    // still arrive, and after that while clients wait in its queue (a slot
    // frees as soon as one connection ends), up to the drain's limit.
    auto until = asio::steady_timer::time_point::max();
    if (drain_until_) {
      if (drain_over()) {
        stop();
        break;
      }
      until = std::chrono::steady_clock::now() < *drain_until_ ? *drain_until_ : drain_limit_;
    }
    wait_timer_.expires_at(until);
    co_await wait_timer_.async_wait(use_tuple);
  }
  paused_ = false;
}

bool Listener::drain_over() {
  const auto now = std::chrono::steady_clock::now();
  if (now >= drain_limit_) return true;
  if (now < *drain_until_) return false;
  // Over once the queue is empty: a listening socket is readable while it
  // holds a client.
  pollfd queue{acceptor_.native_handle(), POLLIN, 0};
  return ::poll(&queue, 1, 0) <= 0;
}

asio::awaitable<bool> Listener::wait_for_client() {
  using namespace asio::experimental::awaitable_operators;
  if (!drain_until_) {
    auto [ec] = co_await acceptor_.async_wait(Acceptor::wait_read, use_tuple);
    if (stopped_) co_return false;
    // Cancelled by stop_gracefully(): look again, now as a drain.
    if (ec == asio::error::operation_aborted) co_return true;
    if (ec) co_return co_await back_off(ec);
    co_return true;
  }
  // Draining: the queue is empty; a deferred client may still come until
  // the window closes.
  if (std::chrono::steady_clock::now() >= *drain_until_) {
    stop();
    co_return false;
  }
  wait_timer_.expires_at(*drain_until_);
  co_await (acceptor_.async_wait(Acceptor::wait_read, use_tuple) || wait_timer_.async_wait(use_tuple));
  co_return !stopped_;
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
    co_await self->wait_until_accepting();
    if (self->stopped_) break;
    // accept4() directly, rather than async_accept: the socket arrives
    // non-blocking and close-on-exec in one system call, and the event loop
    // is asked to wait only when the backlog is empty.
    sockaddr_storage address{};
    socklen_t address_size = sizeof address;
    const int fd = ::accept4(self->acceptor_.native_handle(), reinterpret_cast<sockaddr*>(&address), &address_size,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        in_a_row = 0;
        if (!co_await self->wait_for_client()) break;
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
    self->admit(fd, endpoint_from(reinterpret_cast<const sockaddr*>(&address), address_size));
  }
}

void Listener::admit(int fd, const Endpoint& peer) {
  const ListenerConfig& config = service_->config;
  // Refusals close the socket before any handler or coroutine frame exists
  // for it.
  if (config.rate != 0 && !rate_.take(config.rate, config.burst)) {
    ::close(fd);
    refuse(Refusal::rate, peer, fmt::format("rate ({}/s) exceeded", config.rate));
    return;
  }
  if (at_capacity()) {
    ::close(fd);
    refuse(Refusal::max_connections, peer, "max_connections reached");
    return;
  }
  std::optional<IpBytes> source;
  // Behind a PROXY header the client is known only once the header is read.
  if (!config.proxy_protocol && !admit_client(config, peer, source)) {
    ::close(fd);
    return;
  }
  ++counters_.accepted;
  auto connection = std::make_unique<ServerConnection>(io_.get_executor(), family_, fd, peer, service_, *logger_,
                                                       shared_->server, shared_->observer && config.access_log);
  connection->source = source;
  // The access log names the address the client reached, which cannot be
  // asked of a closed socket: the handler may close it before the end.
  if (connection->observed()) {
    if (accepted_local_) {
      connection->set_local(*accepted_local_);
    } else {
      (void)connection->local();
    }
  }
  live_.push_back(*connection);
  ++active_;
  ++shared_->connections;
  connection->set_idle_timeout(config.idle_timeout);
  if (config.session_timeout.count() > 0) {
    connection->set_deadline(Connection::clock::now() + config.session_timeout);
  }
  if (config.proxy_protocol) {
    asio::co_spawn(io_, introduce(this, std::move(connection)), asio::detached);
  } else {
    begin(std::move(connection));
  }
}

asio::awaitable<void> Listener::introduce(boost::intrusive_ptr<Listener> self, ConnectionPtr connection) {
  const ListenerConfig& config = connection->config();
  const Endpoint before = connection->peer();
  const auto header = co_await read_proxy_header(*connection, config.proxy_protocol_timeout);
  bool admitted = false;
  if (!header) {
    self->refuse(Refusal::proxy_header, before, header.error().message());
  } else if (header->client) {
    connection->set_client(*header->client, header->server);
    admitted = self->admit_client(config, connection->peer(), connection->source, connection->socket_peer());
  } else {
    admitted = self->admit_client(config, connection->peer(), connection->source);
  }
  if (!admitted || !connection->is_open()) {
    connection->refused = true;
    connection->close();
    self->finish(*connection);
    co_return;
  }
  self->begin(std::move(connection));
}

void Listener::begin(ConnectionPtr connection) {
  const Service& service = *connection->service();
  const std::optional<Duration> hold_for =
      service.tls ? std::optional<Duration>(service.config.tls->handshake_timeout)
                  : service.handler->client_speaks_first();
  // Usually the request is there by the time the connection is accepted:
  // then the handler starts at once and the connection never touches the
  // event loop (no registration, no wait, and a close that needs no
  // deregistration).
  if (hold_for && !connection->readable_now()) {
    hold(this, std::move(connection), *hold_for);
  } else {
    asio::co_spawn(io_, serve(this, std::move(connection)), asio::detached);
  }
}

// Holds a connection whose client speaks first, with no coroutine until the
// client does: a completion handler of a few pointers, the event loop's
// operation and the Connection itself.
void Listener::hold(boost::intrusive_ptr<Listener> self, ConnectionPtr connection, Duration limit) {
  ServerConnection& conn = *connection;
  error_code ec;
  auto& socket = conn.registered_socket(ec);
  if (ec) {
    conn.log(spdlog::level::err, "cannot register the connection with the event loop: {}; closing it", ec.message());
    self->finish(conn);
    return;
  }
  const bool armed = conn.arm(limit);
  socket.async_wait(Stream::socket_type::wait_read,
                    [self = std::move(self), connection = std::move(connection), armed](const error_code&) mutable {
                      if (armed) connection->disarm();
                      auto& io = self->io_;
                      asio::co_spawn(io, serve(std::move(self), std::move(connection)), asio::detached);
                    });
}

asio::awaitable<bool> Listener::secure(ServerConnection& connection) {
  const Service& service = *connection.service();
  const TlsConfig& tls = *service.config.tls;
  // The handshake's time counts from the accept: the hold waited already.
  const auto spent = std::chrono::duration_cast<Duration>(Connection::clock::now() - connection.accepted_at());
  const Duration left = std::max<Duration>(tls.handshake_timeout - spent, Duration(1));
  auto session = service.tls->new_session(connection.fd());
  std::string why;
  if (!session) {
    why = "cannot start a TLS session (out of memory)";
  } else {
    const IoResult shook = co_await connection.accept_tls(std::move(session), left);
    if (shook.timed_out() && connection.expired() == Stream::Deadline::call) {
      why = fmt::format("no TLS handshake within tls_handshake_timeout ({})", format_duration(tls.handshake_timeout));
    } else if (!shook.ok()) {
      // An idle or session timeout, or a close by the server, ends it as
      // any other connection.
      if (connection.expired() != Stream::Deadline::none || !connection.is_open()) co_return false;
      why = fmt::format("TLS handshake failed: {}", shook.ec.message());
    } else if (!tls.alpn.empty() && connection.tls()->alpn.empty()) {
      why = make_error_code(TlsErrc::no_alpn).message();
    }
  }
  if (why.empty()) co_return true;
  connection.refused = true;
  refuse(Refusal::tls_handshake, connection.peer(), why, connection.socket_peer());
  co_return false;
}

asio::awaitable<void> Listener::serve(boost::intrusive_ptr<Listener> self, ConnectionPtr owned) {
  ServerConnection& connection = *owned;
  // A hold may have ended with the listener's own timeout, or with the
  // connection closed by a shutdown: then there is nothing for the handler
  // to do.
  const auto stopped = [&] {
    const auto expired = connection.expired();
    return !connection.is_open() || expired == Stream::Deadline::idle || expired == Stream::Deadline::session;
  };
  bool ready = !stopped();
  if (ready && connection.service()->tls) ready = co_await self->secure(connection) && !stopped();
  if (ready) {
    try {
      co_await connection.service()->handler->serve(connection);
    } catch (const std::exception& e) {
      connection.log(spdlog::level::err, "handler \"{}\" failed: {}", connection.config().handler, e.what());
    }
  }
  self->log_timeout(connection);
  // The callback may refer to the handler's finished frame.
  connection.on_close(nullptr);
  connection.close();
  self->finish(connection);
}

void Listener::log_timeout(ServerConnection& connection) {
  const auto expired = connection.expired();
  const ListenerConfig& config = connection.config();
  if (connection.failure() == make_error_code(TlsErrc::renegotiation)) {
    ++counters_.tls_renegotiations;
    connection.log_throttled(timeout_log_, spdlog::level::info, "closed: the peer tried to renegotiate TLS");
    return;
  }
  if (expired != Stream::Deadline::idle && expired != Stream::Deadline::session) return;
  const bool idle = expired == Stream::Deadline::idle;
  connection.log_throttled(timeout_log_, spdlog::level::info, "closed: timed out ({} {})",
                           idle ? "idle_timeout" : "session_timeout",
                           format_duration(idle ? config.idle_timeout : config.session_timeout));
}

void Listener::finish(ServerConnection& connection) {
  if (connection.source) sources_.release(*connection.source);
  --active_;
  --shared_->connections;
  const auto duration =
      std::chrono::duration_cast<std::chrono::microseconds>(Connection::clock::now() - connection.accepted_at());
  ++counters_.ended;
  counters_.bytes_received += connection.bytes_received();
  counters_.bytes_sent += connection.bytes_sent();
  const double seconds = std::chrono::duration<double>(duration).count();
  counters_.duration_sum += seconds;
  std::size_t bucket = 0;
  while (bucket < duration_buckets.size() && seconds > duration_buckets[bucket]) ++bucket;
  ++counters_.durations[bucket];
  if (connection.expired() == Stream::Deadline::idle) ++counters_.idle_timeouts;
  if (connection.expired() == Stream::Deadline::session) ++counters_.session_timeouts;
  if (connection.observed() && shared_->observer && !connection.refused) report_end(connection, duration);
  // The connection list unlinks it as it is destroyed (by the caller's
  // owner, right after this).
  resume();
  if (drain_done_ && active_ == 0) drained(0);
  if (shared_->on_change) shared_->on_change();
}

void Listener::report_end(ServerConnection& connection, std::chrono::microseconds duration) {
  ConnectionEnd end = ConnectionEnd::handler_done;
  std::string error;
  if (connection.closed_by_server()) {
    end = ConnectionEnd::shutdown;
  } else if (connection.expired() == Stream::Deadline::idle) {
    end = ConnectionEnd::idle_timeout;
  } else if (connection.expired() == Stream::Deadline::session) {
    end = ConnectionEnd::session_timeout;
  } else if (connection.failure()) {
    end = ConnectionEnd::error;
    error = connection.failure().message();
  } else if (connection.eof_received()) {
    end = ConnectionEnd::client_closed;
  }
  const ListenerConfig& config = connection.config();
  shared_->observer->connection_ended(ConnectionRecord{
      config.name, config.handler, connection.peer(), connection.socket_peer(), connection.local(),
      std::chrono::system_clock::now() - duration, duration, connection.bytes_received(), connection.bytes_sent(),
      end, error, connection.annotations(), connection.tls()});
}

std::pair<std::uint64_t, std::uint64_t> Listener::open_bytes() const {
  std::pair<std::uint64_t, std::uint64_t> bytes{0, 0};
  for (const auto& connection : live_) {
    bytes.first += connection.bytes_received();
    bytes.second += connection.bytes_sent();
  }
  return bytes;
}

Server::ListenerState Listener::state() const {
  if (drain_done_) return Server::ListenerState::draining;
  if (disabled_) return Server::ListenerState::disabled;
  if (paused_) return Server::ListenerState::paused;
  return Server::ListenerState::serving;
}

void Listener::disable() {
  disabled_ = true;
  // The accept loop sees it at its next wait; wake it if it waits for a
  // client now.
  error_code ignored;
  acceptor_.cancel(ignored);
}

void Listener::enable() {
  disabled_ = false;
  if (drain_done_) drained(active_);
  wait_timer_.cancel();
}

void Listener::drain(Duration timeout, std::function<void(std::size_t)> done) {
  disable();
  if (drain_done_) drained(active_);
  if (active_ == 0) {
    asio::post(io_, [done = std::move(done)] { done(0); });
    return;
  }
  drain_done_ = std::move(done);
  drain_timer_ = std::make_unique<asio::steady_timer>(io_, timeout);
  drain_timer_->async_wait([self = boost::intrusive_ptr<Listener>(this)](const error_code& ec) {
    if (ec || !self->drain_done_) return;
    const std::size_t cut = self->active_;
    self->drained(cut);
    self->close_connections();
  });
}

void Listener::drained(std::size_t cut) {
  auto done = std::exchange(drain_done_, nullptr);
  if (drain_timer_) drain_timer_->cancel();
  asio::post(io_, [done = std::move(done), cut] { done(cut); });
}

}  // namespace portico
