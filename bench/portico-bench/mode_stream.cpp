// stream: bulk bytes one way, for throughput through a proxy or a sink.
// up: we write --size chunks as fast as the socket takes them and drain
// whatever comes back; down: we send --message once, then read, counting
// every --size bytes as one op. Latency is the time each chunk took.

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "modes.hpp"

namespace bench {

namespace {

// Bytes one slot may move before yielding, so one fast socket can't
// starve the others (edge-triggered epoll won't remind us of it).
constexpr std::size_t kBytesPerTurn = 1024 * 1024;

class StreamConn final : public Conn {
 public:
  StreamConn(Context& ctx, const std::vector<char>& payload) : Conn(ctx), payload_(payload) {}

  void start(Clock::time_point) override { open(); }

 private:
  bool up() const { return ctx_.options.direction == Direction::up; }

  void on_connected(Clock::time_point now) override {
    chunk_start_ = now;
    done_ = 0;
    deadline_ = now + ctx_.options.timeout;
    if (up()) {
      on_io(EPOLLOUT);  // start writing now: no other event is coming
      return;
    }
    // A short request line telling a source to start; tiny, so it fits.
    const auto& msg = ctx_.options.message;
    if (!msg.empty() && send_some(msg.data(), msg.size()) < 0) fail_errno(errno, now);
  }

  void on_io(std::uint32_t) override {
    const auto now = Clock::now();
    std::size_t moved = 0;
    if (up() && !write_some(now, moved)) return;
    if (!read_some(now, moved)) return;
    if (moved >= kBytesPerTurn) yield();
  }

  // Each finished chunk is one op; progress of any kind pushes the timeout.
  void progress(Clock::time_point now, std::size_t n) {
    done_ += n;
    deadline_ = now + ctx_.options.timeout;
    if (done_ < payload_.size()) return;
    // A fresh clock reading only when a chunk completes: once per chunk,
    // not per system call.
    const auto t = Clock::now();
    while (done_ >= payload_.size()) {
      done_ -= payload_.size();
      ctx_.stats.op(t - chunk_start_);
      chunk_start_ = t;
    }
  }

  bool write_some(Clock::time_point now, std::size_t& moved) {
    while (moved < kBytesPerTurn) {
      const std::size_t at = done_ % payload_.size();
      const ssize_t n = send_some(payload_.data() + at, payload_.size() - at);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return true;
        fail_errno(errno, now);
        return false;
      }
      ctx_.stats.sent(static_cast<std::uint64_t>(n));
      progress(now, static_cast<std::size_t>(n));
      moved += static_cast<std::size_t>(n);
    }
    return true;
  }

  bool read_some(Clock::time_point now, std::size_t& moved) {
    auto& buf = ctx_.scratch;
    while (moved < kBytesPerTurn || up()) {
      const ssize_t n = recv_some(buf.data(), buf.size());
      if (n > 0) {
        ctx_.stats.received(static_cast<std::uint64_t>(n));
        if (!up()) {
          progress(now, static_cast<std::size_t>(n));
          moved += static_cast<std::size_t>(n);
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      if (n < 0) {
        fail_errno(errno, now);
      } else if (up()) {
        fail(ErrorKind::closed, now);  // a sink should not hang up on us
      } else {
        close_fd();  // a source that ends its stream: just go again
        start(now);
      }
      return false;
    }
    return true;
  }

  const std::vector<char>& payload_;
  Clock::time_point chunk_start_{};
  std::size_t done_ = 0;  // bytes of the current chunk moved so far
};

}  // namespace

RunResult run_stream(Context& ctx) {
  return run_with_payload<StreamConn>(ctx);
}

}  // namespace bench
