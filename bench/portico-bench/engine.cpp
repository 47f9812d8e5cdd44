#include "engine.hpp"

#include <openssl/err.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <system_error>

namespace bench {

namespace {

constexpr auto kTick = std::chrono::milliseconds(5);
constexpr auto kRetryPause = std::chrono::milliseconds(10);

volatile std::sig_atomic_t g_stop = 0;

extern "C" void on_stop_signal(int) { g_stop = 1; }

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: epoll_wait must return at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // belt and braces: we send with MSG_NOSIGNAL
}

bool stop_requested() { return g_stop != 0; }

// ---- Conn ----------------------------------------------------------------

Conn::~Conn() {
  close_fd();
  keep_session(nullptr);
}

void Conn::keep_session(SSL_SESSION* session) {
  if (session_) SSL_SESSION_free(session_);
  session_ = session;
}

void Conn::handle(std::uint32_t events) {
  if (fd_ < 0) return;
  if (connecting_) {
    const auto now = Clock::now();
    if (events & (EPOLLERR | EPOLLHUP)) {
      const int err = socket_error(fd_);
      fail_errno(err ? err : ECONNREFUSED, now);
      return;
    }
    if (!(events & EPOLLOUT)) return;
    connecting_ = false;
    if (ctx_.tls) {
      ssl_ = ctx_.tls->open(fd_, this, ctx_.tls->resume() ? session_ : nullptr);
      if (!ssl_) return fail_errno(ENOMEM, now);
      handshaking_ = true;
      return handshake(now);
    }
    on_connected(now);
    if (fd_ < 0 || !(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  }
  if (handshaking_) return handshake(Clock::now());
  on_io(events);
}

void Conn::handshake(Clock::time_point now) {
  const int rc = SSL_do_handshake(ssl_);
  if (rc != 1) {
    const ssize_t r = tls_result(rc);
    if (r == 0) return fail(ErrorKind::closed, now);  // the server hung up mid-handshake
    if (errno != EAGAIN) fail_errno(errno, now);
    return;
  }
  handshaking_ = false;
  ctx_.tls->handshake_done(ssl_, ctx_.stats);
  on_connected(now);
  // The read that finished the handshake may have taken what followed it
  // (tickets, a server's first words) into OpenSSL's buffer, where epoll
  // cannot see it. Only then is on_io() called now: asking the socket
  // when nothing is buffered would cost a read(2) that says EAGAIN.
  if (fd_ >= 0 && ssl_ && !handshaking_ && SSL_has_pending(ssl_)) on_io(EPOLLIN);
}

ssize_t Conn::tls_send(const void* data, std::size_t len) {
  if (len == 0) return 0;
  return tls_result(SSL_write(ssl_, data, static_cast<int>(std::min<std::size_t>(len, INT_MAX))));
}

ssize_t Conn::tls_recv(void* buf, std::size_t len) {
  return tls_result(SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(len, INT_MAX))));
}

// SSL_write's, SSL_read's or SSL_do_handshake's return value in send's and
// recv's terms.
ssize_t Conn::tls_result(int rc) {
  if (rc > 0) return rc;
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      // Both wait for epoll: the socket is registered for in and out.
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN: return 0;  // close_notify, or a bare FIN
    case SSL_ERROR_SYSCALL: {
      const int err = errno;
      ERR_clear_error();
      if (err == 0) return 0;
      errno = err;  // the socket's own error: a reset, say
      return -1;
    }
    default:
      ERR_clear_error();
      errno = EPROTO;
      return -1;
  }
}

void Conn::resume() {
  if (!yielded_ || fd_ < 0 || connecting_ || handshaking_) return;
  yielded_ = false;
  on_io(EPOLLIN | EPOLLOUT);
}

void Conn::check(Clock::time_point now) {
  if (retry_at_ != kNever) {
    if (now >= retry_at_) {
      retry_at_ = kNever;
      start(now);
    }
    return;
  }
  if (fd_ >= 0 && now >= deadline_) on_timeout(now);
}

void Conn::close_fd() {
  if (ssl_) {
    // No close_notify is sent: the server has closed first, or the run is
    // over. Marked as shut down, the session stays resumable; otherwise
    // SSL_free would take the slot's ticket off the list of usable ones.
    SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  handshaking_ = false;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  connecting_ = false;
  yielded_ = false;
  deadline_ = kNever;
}

bool Conn::open() {
  connect_start_ = Clock::now();
  const int fd = start_connect(ctx_.target, ctx_.sources);
  if (fd < 0) {
    fail_errno(errno, connect_start_);
    return false;
  }
  fd_ = fd;
  connecting_ = true;
  deadline_ = connect_start_ + ctx_.options.timeout;
  if (!ctx_.engine.add(fd_, this)) {
    fail_errno(errno, connect_start_);
    return false;
  }
  return true;
}

void Conn::fail(ErrorKind kind, Clock::time_point now) {
  ctx_.stats.error(kind);
  on_fail();
  close_fd();
  if (retry_) retry_at_ = now + kRetryPause;
}

void Conn::yield() {
  if (yielded_) return;
  yielded_ = true;
  ctx_.engine.defer(this);
}

// ---- Engine --------------------------------------------------------------

Engine::Engine() : epfd_(epoll_create1(EPOLL_CLOEXEC)) {
  if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
}

Engine::~Engine() { ::close(epfd_); }

bool Engine::add(int fd, Conn* conn) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = conn;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

void Engine::run(Clock::time_point until, const std::function<void(Clock::time_point)>& tick,
                 const std::function<bool()>& done) {
  auto next_tick = Clock::now();
  while (!stop_requested()) {
    const auto now = Clock::now();
    if (now >= until || (done && done())) break;
    if (now >= next_tick) {
      tick(now);
      next_tick = now + kTick;
    }
    int timeout_ms = 0;
    if (deferred_.empty()) {
      // Round up, or we would spin through sub-millisecond waits.
      const auto wait = std::min(next_tick, until) - now;
      timeout_ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
    }
    const int n = epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    }
    for (int i = 0; i < n; ++i) static_cast<Conn*>(events_[i].data.ptr)->handle(events_[i].events);
    resuming_.swap(deferred_);
    for (Conn* c : resuming_) c->resume();
    resuming_.clear();
  }
}

// ---- phases --------------------------------------------------------------

void check_all(Conns& conns, Clock::time_point now) {
  for (auto& c : conns) c->check(now);
}

void run_timed(Context& ctx, Conns& conns) {
  const auto tick = [&](Clock::time_point now) { check_all(conns, now); };
  auto now = Clock::now();
  for (auto& c : conns) c->start(now);
  if (ctx.options.warmup > Nanos::zero()) ctx.engine.run(now + ctx.options.warmup, tick);
  now = Clock::now();
  ctx.stats.begin(now, ctx.options.server_pids);
  ctx.engine.run(now + ctx.options.duration, tick);
  ctx.stats.end(Clock::now(), ctx.options.server_pids);
  for (auto& c : conns) c->close_fd();
}

}  // namespace bench
