// idle: open --connections connections, hold them for --duration without
// sending anything, and count how many got established and how many the
// server closed meanwhile. With --server-pid the server's RSS is sampled
// before the first connect and at the end of the hold, still connected.

#include <sys/socket.h>

#include <cerrno>

#include <fmt/format.h>

#include "modes.hpp"

namespace bench {

namespace {

// Connects in flight at once. Well below any sane listen backlog, so the
// ramp-up doesn't overflow the accept queue and turn into SYN retries.
constexpr unsigned kMaxInFlight = 256;
constexpr auto kMaxRamp = std::chrono::seconds(60);

struct Tally {
  unsigned in_flight = 0;
  std::uint64_t established = 0;
  std::uint64_t server_closed = 0;
};

class IdleConn final : public Conn {
 public:
  IdleConn(Context& ctx, Tally& tally) : Conn(ctx), tally_(tally) { retry_ = false; }

  void start(Clock::time_point) override {
    pending_ = true;
    ++tally_.in_flight;
    open();
  }

 private:
  void on_connected(Clock::time_point now) override {
    ctx_.stats.op(now - connect_start_);
    settle();
    ++tally_.established;
    deadline_ = kNever;  // held connections never time out
  }

  void on_fail() override { settle(); }

  void settle() {
    if (pending_) --tally_.in_flight;
    pending_ = false;
  }

  // Anything the server sends is drained; its EOF or reset ends the slot.
  void on_io(std::uint32_t) override {
    for (;;) {
      const ssize_t n = recv_some(ctx_.scratch.data(), ctx_.scratch.size());
      if (n > 0) {
        ctx_.stats.received(static_cast<std::uint64_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      ++tally_.server_closed;
      close_fd();
      return;
    }
  }

  Tally& tally_;
  bool pending_ = false;  // connect started, outcome not known yet
};

}  // namespace

RunResult run_idle(Context& ctx) {
  const auto& opt = ctx.options;
  Tally tally;
  Conns conns;
  for (unsigned i = 0; i < opt.connections; ++i) conns.push_back(std::make_unique<IdleConn>(ctx, tally));
  const auto tick = [&](Clock::time_point now) { check_all(conns, now); };

  // The window opens before the first connect so the server's RSS "before"
  // sample sees no connection at all.
  const auto begin = Clock::now();
  ctx.stats.begin(begin, opt.server_pids);

  // Ramp-up: keep kMaxInFlight connects going until every slot has had its
  // one attempt.
  std::size_t next = 0;
  const auto top_up = [&] {
    const auto now = Clock::now();
    while (next < conns.size() && tally.in_flight < kMaxInFlight) conns[next++]->start(now);
    return next == conns.size() && tally.in_flight == 0;
  };
  ctx.engine.run(begin + kMaxRamp, tick, top_up);
  const auto ramp_end = Clock::now();
  const double ramp_s = std::chrono::duration<double>(ramp_end - begin).count();
  // Progress on stderr, so a person (or a script sampling the server) knows
  // the hold has begun; stdout stays one clean report.
  fmt::print(stderr, "idle: {} of {} connections established in {:.3f} s, holding for {:.3f} s\n",
             tally.established, opt.connections, ramp_s, std::chrono::duration<double>(opt.duration).count());

  ctx.engine.run(ramp_end + opt.duration, tick);
  const auto end = Clock::now();
  ctx.stats.end(end, opt.server_pids);
  for (auto& c : conns) c->close_fd();

  RunResult r;
  r.idle = true;
  r.attempted = next;
  r.established = tally.established;
  r.server_closed = tally.server_closed;
  r.ramp_seconds = ramp_s;
  r.seconds = std::chrono::duration<double>(end - ramp_end).count();
  r.ops_per_sec = ramp_s > 0 ? static_cast<double>(r.established) / ramp_s : 0;
  return r;
}

}  // namespace bench
