// greeting: connect, send a line, read to EOF, compare, close, repeat. This
// is the inetd case: the cost measured is mostly connection setup/teardown.

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "modes.hpp"

namespace bench {

namespace {

class GreetingConn final : public Conn {
 public:
  using Conn::Conn;

  void start(Clock::time_point) override {
    sent_ = 0;
    got_ = 0;
    open();
  }

 private:
  void on_connected(Clock::time_point now) override { send_rest(now); }

  void send_rest(Clock::time_point now) {
    const auto& msg = ctx_.options.message;
    while (sent_ < msg.size()) {
      const ssize_t n = send_some(msg.data() + sent_, msg.size() - sent_);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) fail_errno(errno, now);
        return;
      }
      sent_ += static_cast<std::size_t>(n);
      ctx_.stats.sent(static_cast<std::uint64_t>(n));
    }
  }

  void on_io(std::uint32_t events) override {
    const auto now = Clock::now();
    if (sent_ < ctx_.options.message.size()) {
      send_rest(now);
      if (fd_ < 0) return;
    }
    const auto& expect = ctx_.options.expect;
    auto& buf = ctx_.scratch;
    for (;;) {
      const ssize_t n = recv_some(buf.data(), buf.size());
      if (n > 0) {
        const auto len = static_cast<std::size_t>(n);
        ctx_.stats.received(len);
        if (!expect.empty() &&
            (got_ + len > expect.size() || std::memcmp(buf.data(), expect.data() + got_, len) != 0)) {
          fail(ErrorKind::bad_reply, now);
          return;
        }
        got_ += len;
        if (len == buf.size() || !short_read_drains()) continue;
        // A short read took all that had arrived; edge-triggered epoll will
        // report anything newer. If the peer's FIN was already here when
        // epoll reported this event, nothing more can come: that is EOF,
        // without the extra recv() that would return 0.
        if (events & (EPOLLRDHUP | EPOLLHUP)) finish(now);
        return;
      }
      if (n == 0) {
        finish(now);
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      // A server that closes without reading the request (nginx's `return`)
      // ends with a reset instead of a FIN; the reply was still complete.
      if (errno == ECONNRESET && got_ > 0 && got_ == ctx_.options.expect.size()) return finish(now);
      return fail_errno(errno, now);
    }
  }

  // EOF: the reply is complete, or the server hung up early.
  void finish(Clock::time_point now) {
    if (got_ == 0) return fail(ErrorKind::closed, now);
    if (got_ < ctx_.options.expect.size()) return fail(ErrorKind::bad_reply, now);
    ctx_.stats.op(now - connect_start_);
    close_fd();
    start(now);
  }

  std::size_t sent_ = 0;
  std::size_t got_ = 0;
};

}  // namespace

RunResult timed_result(const Stats& stats) {
  RunResult r;
  r.seconds = stats.seconds();
  r.ops_per_sec = r.seconds > 0 ? static_cast<double>(stats.ops()) / r.seconds : 0;
  return r;
}

std::vector<char> make_payload(std::size_t size) {
  std::vector<char> p(size);
  for (std::size_t i = 0; i < size; ++i) p[i] = static_cast<char>('!' + i % 251);
  return p;
}

RunResult run_greeting(Context& ctx) {
  Conns conns;
  for (unsigned i = 0; i < ctx.options.connections; ++i) conns.push_back(std::make_unique<GreetingConn>(ctx));
  run_timed(ctx, conns);
  return timed_result(ctx.stats);
}

}  // namespace bench
