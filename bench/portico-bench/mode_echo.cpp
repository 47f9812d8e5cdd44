// echo: persistent connections, each sends --size bytes, reads the same
// bytes back and checks them, then goes again. Measures request rate. With
// --round-trips N a connection closes after N round trips and the slot
// connects again, so a balancing proxy places connections all the time.

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "modes.hpp"

namespace bench {

namespace {

class EchoConn final : public Conn {
 public:
  EchoConn(Context& ctx, const std::vector<char>& payload) : Conn(ctx), payload_(payload) {}

  void start(Clock::time_point) override {
    trips_ = 0;
    open();
  }

 private:
  void on_connected(Clock::time_point now) override { begin_op(now); }

  void begin_op(Clock::time_point now) {
    op_start_ = now;
    sent_ = 0;
    got_ = 0;
    deadline_ = now + ctx_.options.timeout;
    send_rest(now);
  }

  void send_rest(Clock::time_point now) {
    while (sent_ < payload_.size()) {
      const ssize_t n = send_some(payload_.data() + sent_, payload_.size() - sent_);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) fail_errno(errno, now);
        return;
      }
      sent_ += static_cast<std::size_t>(n);
      ctx_.stats.sent(static_cast<std::uint64_t>(n));
    }
  }

  // Reads no more than the reply still owed, and stops at a short read:
  // edge-triggered epoll reports whatever arrives after it, so the recv()
  // that would only say EAGAIN is never made. That keeps the client at two
  // system calls per round trip.
  void on_io(std::uint32_t) override {
    const auto now = Clock::now();
    if (sent_ < payload_.size()) {
      send_rest(now);
      if (fd_ < 0) return;
    }
    auto& buf = ctx_.scratch;
    for (;;) {
      const std::size_t want = std::min(buf.size(), payload_.size() - got_);
      const ssize_t n = recv_some(buf.data(), want);
      if (n > 0) {
        const auto len = static_cast<std::size_t>(n);
        ctx_.stats.received(len);
        // The server can only echo what we have sent so far.
        if (got_ + len > sent_ || std::memcmp(buf.data(), payload_.data() + got_, len) != 0) {
          return fail(ErrorKind::bad_reply, now);
        }
        got_ += len;
        if (got_ == payload_.size()) {
          ctx_.stats.op(now - op_start_);
          if (ctx_.options.round_trips > 0 && ++trips_ == ctx_.options.round_trips) {
            // All of the reply is in: the close leaves nothing unread, so
            // it is an orderly FIN, not a reset.
            close_fd();
            return start(now);
          }
          // Nothing more can be waiting: the server has echoed all we sent.
          return begin_op(now);
        }
        if (len < want && short_read_drains()) return;
        continue;
      }
      if (n == 0) return fail(ErrorKind::closed, now);
      if (errno == EINTR) continue;
      if (errno != EAGAIN) fail_errno(errno, now);
      return;
    }
  }

  const std::vector<char>& payload_;
  Clock::time_point op_start_{};
  std::size_t sent_ = 0;
  std::size_t got_ = 0;
  std::uint64_t trips_ = 0;  // on this connection
};

}  // namespace

RunResult run_echo(Context& ctx) {
  return run_with_payload<EchoConn>(ctx);
}

}  // namespace bench
