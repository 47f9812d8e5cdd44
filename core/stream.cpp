#include <portico/io.hpp>
#include <portico/stream.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/version.hpp>

#include "core/tls.hpp"

// Where the stream reaches into Asio's epoll reactor (below): only for the
// Asio version built with. Anything else keeps Asio's own behaviour.
#if BOOST_ASIO_VERSION == 102600 && defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define PORTICO_EPOLL_REACTOR 1
#include <sys/epoll.h>

#include <cstdint>
#include <type_traits>

#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/reactive_socket_recv_op.hpp>

// ---- Reads that know when the socket is empty ------------------------------
//
// Asio starts every read with a recv at once, before any wait, unless the
// last read on the descriptor said it emptied the socket (its status
// done_and_exhausted; then the next read waits for epoll, whose next edge
// allows a try again). Asio says so only for an EOF. A relay or an echo
// waits for the next message after every message, so each message cost a
// second recv that failed with EAGAIN.
//
// A read that returned less than it asked for did empty the socket of
// bytes; what it cannot see is the peer's end (FIN) or an error already
// there, which the next read would report. Any of those that comes later is
// a new edge of epoll, which lets the next read try again. One that came
// before shows in the events of the last edge epoll reported for the
// descriptor, because epoll computes them when it reports: EPOLLRDHUP (once
// asked for), EPOLLHUP or EPOLLERR. So a short read whose descriptor's last
// reported events hold none of these is the last until the next edge, and
// says done_and_exhausted. (An earlier version claimed that without looking
// at the events, and missed ends that came with the last message.)
//
// Asio keeps the last reported events in the descriptor's state (its
// operation's task_result_) and passes nothing on, so the read is Asio's own
// operation for a buffer type of ours, whose perform step is specialised
// here; the members it needs are reached through explicit instantiation,
// which the language exempts from access checking.

namespace portico {
namespace {

namespace adetail = boost::asio::detail;
using DescriptorState = std::remove_pointer_t<adetail::epoll_reactor::per_descriptor_data>;

template <typename Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type member(Tag) { return Member; }
};

struct ReadyEvents {
  using type = unsigned int adetail::scheduler_operation::*;
  friend type member(ReadyEvents);
};
struct RegisteredEvents {
  using type = std::uint32_t DescriptorState::*;
  friend type member(RegisteredEvents);
};
struct DescriptorMutex {
  using type = adetail::conditionally_enabled_mutex DescriptorState::*;
  friend type member(DescriptorMutex);
};
struct DescriptorReactor {
  using type = adetail::epoll_reactor* DescriptorState::*;
  friend type member(DescriptorReactor);
};
struct EpollDescriptor {
  using type = int adetail::epoll_reactor::*;
  friend type member(EpollDescriptor);
};

template struct Expose<ReadyEvents, &adetail::scheduler_operation::task_result_>;
template struct Expose<RegisteredEvents, &adetail::epoll_reactor::descriptor_state::registered_events_>;
template struct Expose<DescriptorMutex, &adetail::epoll_reactor::descriptor_state::mutex_>;
template struct Expose<DescriptorReactor, &adetail::epoll_reactor::descriptor_state::reactor_>;
template struct Expose<EpollDescriptor, &adetail::epoll_reactor::epoll_fd_>;

// A one-buffer sequence for Stream::receive, with the descriptor's state
// when epoll reports the peer's end for it (else null: never exhausted
// before an EOF, as Asio does).
struct ExhaustibleBuffer {
  boost::asio::mutable_buffer buffer;
  DescriptorState* state = nullptr;

  const boost::asio::mutable_buffer* begin() const { return &buffer; }
  const boost::asio::mutable_buffer* end() const { return &buffer + 1; }

  // The last edge epoll reported held no end, hang-up or error.
  bool quiet() const {
    if (state == nullptr) return false;
    // The descriptor's state is an operation of Asio's scheduler, a private
    // base, which the cast reaches. The reactor writes the events when epoll
    // reports the descriptor, which with more than one thread running the
    // io_context may be another thread (any value read is safe, see above).
    const auto* op = (const adetail::scheduler_operation*)state;
    const unsigned int events = __atomic_load_n(&(op->*member(ReadyEvents{})), __ATOMIC_RELAXED);
    return (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0;
  }
};

}  // namespace
}  // namespace portico

namespace boost::asio::detail {

// The perform step of Asio's receive operation for ExhaustibleBuffer: the
// recv Asio's would make, and done_and_exhausted also after a short read
// that left nothing unseen (above). Runs with the descriptor's lock held,
// either at once when the read starts or when epoll reports the descriptor.
template <>
class reactive_socket_recv_op_base<portico::ExhaustibleBuffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type, const portico::ExhaustibleBuffer& buffers,
                               socket_base::message_flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        buffers_(buffers) {}

  static status do_perform(reactor_op* base) {
    auto* o = static_cast<reactive_socket_recv_op_base*>(base);
    const mutable_buffer& buffer = o->buffers_.buffer;
    for (;;) {
      const ssize_t n = ::recv(o->socket_, buffer.data(), buffer.size(), 0);
      if (n > 0) {
        o->ec_ = boost::system::error_code();
        o->bytes_transferred_ = static_cast<std::size_t>(n);
        return o->bytes_transferred_ < buffer.size() && o->buffers_.quiet() ? done_and_exhausted : done;
      }
      o->bytes_transferred_ = 0;
      if (n == 0) {
        o->ec_ = boost::asio::error::eof;
        return done_and_exhausted;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;
      o->ec_ = boost::system::error_code(errno, boost::asio::error::get_system_category());
      return done;
    }
  }

 private:
  socket_type socket_;
  portico::ExhaustibleBuffer buffers_;
};

}  // namespace boost::asio::detail
#endif

namespace portico {

namespace asio = boost::asio;
using boost::system::error_code;

bool IoResult::timed_out() const { return ec == asio::error::timed_out; }

namespace {

error_code errno_code(int err) { return error_code(err, asio::error::get_system_category()); }

// Asio keeps two facts about a socket in its implementation's state bits:
// whether it is non-blocking, set only with an ioctl(FIONBIO), and whether
// the descriptor may have copies (any socket given by descriptor), which
// makes close() deregister it with an epoll_ctl(EPOLL_CTL_DEL) first. An
// accepted descriptor is non-blocking already (SOCK_NONBLOCK) and, until
// share_descriptor(), has no copy, so closing it removes it from epoll by
// itself. The bits are set here directly, through basic_socket's protected
// member; only for the epoll reactor of the Asio version built with.
// Anything else takes the ioctl and keeps Asio's cautious close.
#if PORTICO_EPOLL_REACTOR
struct SocketState : Stream::socket_type {
  static auto& implementation(Stream::socket_type& socket) {
    return (socket.*(&SocketState::impl_)).get_implementation();
  }
  static auto& bits(Stream::socket_type& socket) { return implementation(socket).state_; }
};

void adopt_accepted(Stream::socket_type& socket, error_code&) {
  auto& bits = SocketState::bits(socket);
  bits |= asio::detail::socket_ops::user_set_non_blocking | asio::detail::socket_ops::internal_non_blocking;
  bits &= ~asio::detail::socket_ops::possible_dup;
}

void may_be_copied(Stream::socket_type& socket) {
  if (socket.is_open()) SocketState::bits(socket) |= asio::detail::socket_ops::possible_dup;
}

// Asks epoll to report the peer's end apart (EPOLLRDHUP), so that a short
// read can tell whether it emptied the socket (ExhaustibleBuffer). One
// epoll_ctl, made only for a stream that receive()s: Asio registers every
// descriptor without it. Asio's own later changes of the registration (for
// writes) keep it. A change makes epoll report the descriptor again if it
// is ready, so an end that came before is reported after it.
bool report_peer_end(Stream::socket_type& socket) {
  auto& impl = SocketState::implementation(socket);
  DescriptorState* state = impl.reactor_data_;
  if (state == nullptr) return false;
  adetail::conditionally_enabled_mutex::scoped_lock lock(state->*member(DescriptorMutex{}));
  std::uint32_t& events = state->*member(RegisteredEvents{});
  if (events == 0) return false;  // not in epoll (a regular file)
  if ((events & EPOLLRDHUP) == 0) {
    epoll_event event{};
    event.events = events | EPOLLRDHUP;
    event.data.ptr = state;
    const int epoll_fd = (state->*member(DescriptorReactor{}))->*member(EpollDescriptor{});
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, impl.socket_, &event) != 0) return false;
    events = event.events;
  }
  return true;
}

ExhaustibleBuffer exhaustible(Stream::socket_type& socket, asio::mutable_buffer buffer, bool peer_end_reported) {
  return {buffer, peer_end_reported ? SocketState::implementation(socket).reactor_data_ : nullptr};
}

#else
void adopt_accepted(Stream::socket_type& socket, error_code& ec) { socket.non_blocking(true, ec); }
void may_be_copied(Stream::socket_type&) {}
bool report_peer_end(Stream::socket_type&) { return false; }
asio::mutable_buffer exhaustible(Stream::socket_type&, asio::mutable_buffer buffer, bool) { return buffer; }
#endif

}  // namespace

Stream::Stream(socket_type socket) : socket_(std::move(socket)), timer_(socket_.get_executor()) {
  error_code ec;
  socket_.non_blocking(true, ec);
  if (ec) note(ec);
}

Stream::Stream(const executor_type& executor, int family, int accepted_fd)
    : socket_(executor), unregistered_fd_(accepted_fd), family_(family), timer_(executor) {}

Stream::~Stream() {
  if (unregistered_fd_ >= 0) ::close(unregistered_fd_);
  tls_.reset();
  if (timer_target_) *timer_target_ = nullptr;
}

void Stream::register_socket(error_code& ec) {
  const int fd = std::exchange(unregistered_fd_, -1);
  socket_.assign(socket_type::protocol_type(family_, 0), fd, ec);
  // assign() assumes the descriptor may have copies; it has none unless
  // it was shared.
  if (!ec && !shared_) adopt_accepted(socket_, ec);
  if (!ec) return;
  note(ec);
  error_code ignored;
  if (socket_.is_open()) {
    socket_.close(ignored);
  } else {
    ::close(fd);
  }
}

int Stream::share_descriptor() {
  if (tls_) return -1;
  shared_ = true;
  if (unregistered_fd_ < 0) may_be_copied(socket_);
  return fd();
}

bool Stream::readable_now() const {
  if (unregistered_fd_ < 0) return false;
  char byte;
  for (;;) {
    if (::recv(unregistered_fd_, &byte, 1, MSG_PEEK) >= 0) return true;
    if (errno == EINTR) continue;
    return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

void Stream::note(const error_code& ec) {
  if (ec == asio::error::eof) {
    eof_received_ = true;
  } else if (!failure_ && !would_block(ec) && ec != asio::error::operation_aborted && ec != asio::error::timed_out) {
    failure_ = ec;
  }
}

std::size_t Stream::try_read(asio::mutable_buffer buffer, error_code& ec) {
  ec.clear();
  if (buffer.size() == 0) return 0;
  if (tls_) return tls_read(buffer, ec);
  for (;;) {
    const ssize_t n = ::recv(fd(), buffer.data(), buffer.size(), 0);
    if (n > 0) {
      bytes_received_ += static_cast<std::size_t>(n);
      return static_cast<std::size_t>(n);
    }
    if (n == 0) {
      ec = asio::error::eof;
    } else if (errno == EINTR) {
      continue;
    } else {
      ec = errno_code(errno);
    }
    note(ec);
    return 0;
  }
}

std::size_t Stream::try_write(asio::const_buffer buffer, error_code& ec) {
  ec.clear();
  if (buffer.size() == 0) return 0;
  if (tls_) return tls_write(buffer, ec);
  for (;;) {
    const ssize_t n = ::send(fd(), buffer.data(), buffer.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      bytes_sent_ += static_cast<std::size_t>(n);
      return static_cast<std::size_t>(n);
    }
    if (errno == EINTR) continue;
    ec = errno_code(errno);
    note(ec);
    return 0;
  }
}

void Stream::shutdown_send() {
  tls_close_notify();
  ::shutdown(fd(), SHUT_WR);
}

void Stream::limit_send_queue(std::size_t bytes) {
  // The kernel doubles the value for its own bookkeeping.
  const int size = static_cast<int>(std::min<std::size_t>(bytes, 1 << 30) / 2);
  ::setsockopt(fd(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

void Stream::reset_on_close() {
  const linger abortive{1, 0};
  ::setsockopt(fd(), SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
}

void Stream::cancel() {
  error_code ignored;
  socket_.cancel(ignored);
}

void Stream::close() {
  tls_close_notify();
  if (unregistered_fd_ >= 0) ::close(std::exchange(unregistered_fd_, -1));
  error_code ignored;
  socket_.close(ignored);
  if (on_close_) std::exchange(on_close_, nullptr)();
}

void Stream::expire(Deadline kind) {
  timed_out_ = true;
  expired_ = kind;
  cancel();
}

bool Stream::arm(Duration timeout) {
  const auto now = clock::now();
  auto deadline = deadline_;
  Deadline kind = Deadline::session;
  if (timeout.count() > 0 && now + timeout < deadline) {
    deadline = now + timeout;
    kind = Deadline::call;
  }
  if (idle_timeout_.count() > 0 && now + idle_timeout_ < deadline) {
    deadline = now + idle_timeout_;
    kind = Deadline::idle;
  }
  if (deadline == clock::time_point::max()) return false;
  armed_for_ = kind;
  timed_out_ = false;
  timer_.expires_at(deadline);
  if (!timer_target_) timer_target_ = std::make_shared<Stream*>(this);
  // The completion may run after this step ended (it was already queued
  // when disarm() ran), or after the stream is gone: the generation tells a
  // stale expiry from a live one, and the target is null once the stream
  // was destroyed.
  timer_.async_wait([target = timer_target_, generation = ++timer_generation_](error_code ec) {
    Stream* self = *target;
    if (ec || self == nullptr || generation != self->timer_generation_) return;
    self->expire(self->armed_for_);
  });
  return true;
}

void Stream::disarm() {
  ++timer_generation_;
  timer_.cancel();
}

IoResult Stream::finish(error_code ec, std::size_t bytes) {
  activity_ = Activity::none;
  if (ec && timed_out_) ec = asio::error::timed_out;
  if (ec) note(ec);
  return IoResult{ec, bytes};
}

// The socket is non-blocking: each step first tries the system call, and only
// when it would block waits for readiness. Data that is already there (the
// common case right after accept) costs no trip through the event loop, and
// the buffer is written only by the call itself, never while it waits.
asio::awaitable<IoResult> Stream::read_some(asio::mutable_buffer buffer, Duration timeout) {
  bool armed = false;
  for (;;) {
    error_code ec;
    const std::size_t n = try_read(buffer, ec);
    if (!would_block(ec)) {
      if (armed) disarm();
      co_return finish(ec, n);
    }
    socket_type& socket = registered_socket(ec);
    if (ec) co_return finish(ec, 0);
    if (!armed) armed = arm(timeout);
    activity_ = Activity::reading;
    const auto direction = tls_ && tls_->read_wants_write ? socket_type::wait_write : socket_type::wait_read;
    auto [wait_ec] = co_await socket.async_wait(direction, use_tuple);
    if (wait_ec) {
      if (armed) disarm();
      co_return finish(wait_ec, 0);
    }
  }
}

asio::awaitable<IoResult> Stream::receive(asio::mutable_buffer buffer, Duration timeout) {
  // TLS must decrypt what the socket holds: the event loop cannot read for
  // it.
  if (tls_) co_return co_await read_some(buffer, timeout);
  error_code ec;
  if (unregistered_fd_ >= 0) {
    const std::size_t n = try_read(buffer, ec);
    if (!would_block(ec)) co_return finish(ec, n);
  }
  // The event loop reads straight into `buffer` when data comes: no system
  // call is spent on re-arming the descriptor as a wait for readiness would.
  // It tries the read at once first, unless the last one emptied the socket
  // and epoll has reported nothing since (ExhaustibleBuffer).
  socket_type& socket = registered_socket(ec);
  if (ec) co_return finish(ec, 0);
  if (!peer_end_asked_) {
    peer_end_asked_ = true;
    peer_end_reported_ = report_peer_end(socket);
  }
  const bool armed = arm(timeout);
  activity_ = Activity::reading;
  auto [read_ec, n] = co_await socket.async_read_some(exhaustible(socket, buffer, peer_end_reported_), use_tuple);
  if (armed) disarm();
  bytes_received_ += n;
  co_return finish(read_ec, n);
}

asio::awaitable<IoResult> Stream::wait(socket_type::wait_type type, Duration timeout) {
  error_code ec;
  socket_type& socket = registered_socket(ec);
  if (ec) co_return finish(ec, 0);
  const bool armed = arm(timeout);
  activity_ = type == socket_type::wait_write ? Activity::writing : Activity::reading;
  auto [wait_ec] = co_await socket.async_wait(type, use_tuple);
  if (armed) disarm();
  co_return finish(wait_ec, 0);
}

asio::awaitable<IoResult> Stream::wait_readable(Duration timeout) {
  if (!tls_) co_return co_await wait(socket_type::wait_read, timeout);
  // Bytes OpenSSL took off the socket already would never wake the event
  // loop.
  if (SSL_has_pending(tls_->ssl()) == 1) co_return finish({}, 0);
  co_return co_await wait(tls_->read_wants_write ? socket_type::wait_write : socket_type::wait_read, timeout);
}

asio::awaitable<IoResult> Stream::wait_writable(Duration timeout) {
  const bool read = tls_ && tls_->write_wants_read;
  return wait(read ? socket_type::wait_read : socket_type::wait_write, timeout);
}

asio::awaitable<IoResult> Stream::write(asio::const_buffer buffer, Duration timeout) {
  std::size_t total = 0;
  bool armed = false;
  while (buffer.size() > 0) {
    error_code ec;
    const std::size_t n = try_write(buffer, ec);
    if (!ec) {
      total += n;
      buffer += n;
      // Bytes moved: an idle deadline starts again from now.
      if (armed && idle_timeout_.count() > 0) {
        disarm();
        armed = false;
      }
      continue;
    }
    if (!would_block(ec)) {
      if (armed) disarm();
      co_return finish(ec, total);
    }
    socket_type& socket = registered_socket(ec);
    if (ec) co_return finish(ec, total);
    if (!armed) armed = arm(timeout);
    activity_ = Activity::writing;
    const auto direction = tls_ && tls_->write_wants_read ? socket_type::wait_read : socket_type::wait_write;
    auto [wait_ec] = co_await socket.async_wait(direction, use_tuple);
    if (wait_ec) {
      if (armed) disarm();
      co_return finish(wait_ec, total);
    }
  }
  if (armed) disarm();
  co_return finish({}, total);
}

// ---- TLS -----------------------------------------------------------------

namespace {

// What a failed SSL call means for the caller; the error queue is left
// empty.
error_code tls_error(SSL* ssl, int ret, bool& wants_other_direction, bool reading) {
  const int error = SSL_get_error(ssl, ret);
  switch (error) {
    case SSL_ERROR_WANT_READ:
      wants_other_direction = !reading;
      return asio::error::would_block;
    case SSL_ERROR_WANT_WRITE:
      wants_other_direction = reading;
      return asio::error::would_block;
    case SSL_ERROR_ZERO_RETURN: return asio::error::eof;
    case SSL_ERROR_SYSCALL: {
      const int err = errno;
      ERR_clear_error();
      return err == 0 ? error_code(asio::error::eof) : errno_code(err);
    }
    default: {
      unsigned long last = 0;
      while (const unsigned long e = ERR_get_error()) last = e;
      // A certificate that failed verification says why in the verify
      // result ("hostname mismatch", "certificate has expired").
      if (ERR_GET_REASON(last) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        return verify_error(SSL_get_verify_result(ssl));
      }
      return error_code(static_cast<int>(last), asio::error::get_ssl_category());
    }
  }
}

}  // namespace

std::size_t Stream::tls_read(asio::mutable_buffer buffer, error_code& ec) {
  SSL* ssl = tls_->ssl();
  std::size_t n = 0;
  if (SSL_read_ex(ssl, buffer.data(), buffer.size(), &n) == 1 && !tls_->renegotiation) {
    tls_->read_wants_write = false;
    bytes_received_ += n;
    return n;
  }
  ec = tls_->renegotiation ? make_error_code(TlsErrc::renegotiation)
                           : tls_error(ssl, 0, tls_->read_wants_write, true);
  ERR_clear_error();
  note(ec);
  return 0;
}

std::size_t Stream::tls_write(asio::const_buffer buffer, error_code& ec) {
  SSL* ssl = tls_->ssl();
  std::size_t n = 0;
  if (SSL_write_ex(ssl, buffer.data(), buffer.size(), &n) == 1) {
    tls_->write_wants_read = false;
    bytes_sent_ += n;
    return n;
  }
  ec = tls_error(ssl, 0, tls_->write_wants_read, false);
  ERR_clear_error();
  note(ec);
  return 0;
}

void Stream::tls_close_notify() {
  if (!tls_ || !tls_->established || tls_->close_notify_sent || fd() < 0) return;
  tls_->close_notify_sent = true;
  // Best effort: one try, without waiting for room or for the peer's own.
  SSL_shutdown(tls_->ssl());
  ERR_clear_error();
}

const TlsInfo* Stream::tls() const { return tls_ && tls_->established ? &tls_->info() : nullptr; }

asio::awaitable<IoResult> Stream::handshake(Duration timeout) {
  SSL* ssl = tls_->ssl();
  bool armed = false;
  for (;;) {
    const int ret = SSL_do_handshake(ssl);
    if (ret == 1) {
      if (armed) disarm();
      tls_->established = true;
      co_return finish({}, 0);
    }
    bool wants_write = false;
    error_code ec = tls_error(ssl, ret, wants_write, true);
    ERR_clear_error();
    if (!would_block(ec)) {
      if (armed) disarm();
      // The listener's ALPN refused all the client offered.
      if (tls_->alpn_required) ec = make_error_code(TlsErrc::no_alpn);
      co_return finish(ec, 0);
    }
    socket_type& socket = registered_socket(ec);
    if (ec) co_return finish(ec, 0);
    if (!armed) armed = arm(timeout);
    activity_ = wants_write ? Activity::writing : Activity::reading;
    auto [wait_ec] =
        co_await socket.async_wait(wants_write ? socket_type::wait_write : socket_type::wait_read, use_tuple);
    if (wait_ec) {
      if (armed) disarm();
      co_return finish(wait_ec, 0);
    }
  }
}

asio::awaitable<IoResult> Stream::accept_tls(std::unique_ptr<detail::TlsSession> session, Duration timeout) {
  tls_ = std::move(session);
  co_return co_await handshake(timeout);
}

asio::awaitable<IoResult> Stream::start_tls(const TlsClientContext& context, std::string_view server_name,
                                            Duration timeout) {
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(context.native()));
  if (ssl == nullptr) {
    ERR_clear_error();
    co_return finish(asio::error::no_memory, 0);
  }
  tls_ = std::make_unique<detail::TlsSession>(ssl);
  detail::attach(*tls_);
  SSL_set_fd(ssl, fd());
  SSL_set_connect_state(ssl);
  const std::string name(server_name);
  error_code ip_ec;
  const bool is_ip = !name.empty() && (asio::ip::make_address(name, ip_ec), !ip_ec);
  // SNI carries host names only.
  if (!name.empty() && !is_ip) SSL_set_tlsext_host_name(ssl, name.c_str());
  if (context.verifies() && !name.empty()) {
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    } else {
      SSL_set1_host(ssl, name.c_str());
    }
  }
  ERR_clear_error();
  co_return co_await handshake(timeout);
}

}  // namespace portico
