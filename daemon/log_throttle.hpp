#pragma once
// Keeps a repeating warning (accept failures, refused connections) from
// flooding the log: at most one line per interval, carrying how many were
// held back since the last one.

#include <chrono>
#include <cstdint>

namespace portico {

class LogThrottle {
 public:
  using clock = std::chrono::steady_clock;

  explicit LogThrottle(clock::duration interval = std::chrono::seconds(5)) : interval_(interval) {}

  // True when a line may be written now; `suppressed` then holds how many
  // events were held back since the previous line.
  bool allow(std::uint64_t& suppressed) {
    const auto now = clock::now();
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

 private:
  clock::duration interval_;
  clock::time_point last_{};
  std::uint64_t held_ = 0;
  bool written_ = false;
};

}  // namespace portico
