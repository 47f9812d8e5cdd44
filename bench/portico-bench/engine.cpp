#include "engine.hpp"

#include <unistd.h>

#include <cerrno>
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
    on_connected(now);
    if (fd_ < 0 || !(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  }
  on_io(events);
}

void Conn::resume() {
  if (!yielded_ || fd_ < 0 || connecting_) return;
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
  ctx.stats.begin(now, ctx.options.server_pid);
  ctx.engine.run(now + ctx.options.duration, tick);
  ctx.stats.end(Clock::now(), ctx.options.server_pid);
  for (auto& c : conns) c->close_fd();
}

}  // namespace bench
