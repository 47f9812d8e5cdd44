#pragma once
// Keeps a repeating warning (refused connections, timeouts, a full instance
// limit) from flooding the log: at most one line per interval, carrying how
// many were held back since the last one; and when a burst stops, the
// number held back since the last line is still written once the interval
// is over, so that no count is lost.
//
//   std::uint64_t held = 0;
//   if (throttle.allow(held, executor, [&log](std::uint64_t n) {
//         log.warn("... and {} more refusals since the last report", n); })) {
//     log.warn("refused {}: {}{}", peer, why, held ? fmt::format(" ({} more since the last report)", held) : "");
//   }

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace portico {

// Single-threaded: every call on the thread of the executor it is given.
class LogThrottle {
 public:
  using clock = std::chrono::steady_clock;

  explicit LogThrottle(clock::duration interval = std::chrono::seconds(5)) : interval_(interval) {}
  LogThrottle(const LogThrottle&) = delete;
  LogThrottle& operator=(const LogThrottle&) = delete;
  ~LogThrottle() {
    if (target_) *target_ = nullptr;
  }

  // True when a line may be written now; `suppressed` then holds how many
  // events were held back since the previous line. Otherwise the event is
  // counted, and `summary(count)` is called on `executor` when the
  // interval ends, unless a line (which reports the count) went out first.
  // `summary` is copied only when it is scheduled.
  template <typename Summary>
  bool allow(std::uint64_t& suppressed, const boost::asio::any_io_executor& executor, Summary&& summary) {
    if (allow(suppressed)) return true;
    if (!summary_pending_) schedule(executor, std::function<void(std::uint64_t)>(std::forward<Summary>(summary)));
    return false;
  }

  // The same without the summary: the count held back is reported only by
  // the next line that goes out.
  bool allow(std::uint64_t& suppressed, clock::time_point now = clock::now()) {
    if (written_ && now - last_ < interval_) {
      ++held_;
      return false;
    }
    written_ = true;
    last_ = now;
    suppressed = held_;
    held_ = 0;
    return true;
  }

  // Events held back since the last line.
  std::uint64_t held() const { return held_; }

 private:
  void schedule(const boost::asio::any_io_executor& executor, std::function<void(std::uint64_t)> summary) {
    if (!timer_) timer_ = std::make_unique<boost::asio::steady_timer>(executor);
    if (!target_) target_ = std::make_shared<LogThrottle*>(this);
    summary_pending_ = true;
    timer_->expires_at(last_ + interval_);
    // The timer dies with the throttle, and its completion then finds the
    // target null rather than touching a destroyed object.
    timer_->async_wait([target = target_, summary = std::move(summary)](const boost::system::error_code& ec) {
      LogThrottle* self = *target;
      if (ec || self == nullptr) return;
      self->summary_pending_ = false;
      if (self->held_ == 0) return;
      const std::uint64_t count = self->held_;
      self->held_ = 0;
      self->last_ = clock::now();
      summary(count);
    });
  }

  clock::duration interval_;
  clock::time_point last_{};
  std::uint64_t held_ = 0;
  bool written_ = false;
  bool summary_pending_ = false;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::shared_ptr<LogThrottle*> target_;
};

}  // namespace portico
