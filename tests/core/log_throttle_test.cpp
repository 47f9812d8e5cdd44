// LogThrottle: which lines go out, the counts they carry, and the summary of
// a burst that ended. allow() takes its time point from the caller; the
// summary runs on a real timer. Its interval, 200ms, only has to be longer
// than the few microseconds between the calls a test makes in a row; the
// io_context is bounded by run_for() so that a missing summary fails instead
// of hanging.

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <portico/log_throttle.hpp>

using namespace std::chrono_literals;
using portico::LogThrottle;

namespace {
constexpr auto interval = 200ms;
}  // namespace

TEST_CASE("the first line goes out, then lines within the interval are held back and counted",
          "[log-throttle]") {
  LogThrottle throttle(1s);
  const auto t0 = LogThrottle::clock::now();
  std::uint64_t held = 99;
  CHECK(throttle.allow(held, t0));
  CHECK(held == 0);
  for (int i = 1; i <= 4; ++i) CHECK_FALSE(throttle.allow(held, t0 + i * 100ms));
  CHECK(throttle.held() == 4);
  CHECK_FALSE(throttle.allow(held, t0 + 999ms));
  CHECK(throttle.held() == 5);
  // The interval is over: the next line goes out and reports the five.
  CHECK(throttle.allow(held, t0 + 1s));
  CHECK(held == 5);
  CHECK(throttle.held() == 0);
  // The interval starts again from that line.
  CHECK_FALSE(throttle.allow(held, t0 + 1s + 500ms));
  CHECK(throttle.allow(held, t0 + 2s));
  CHECK(held == 1);
  // After a quiet spell a line carries nothing.
  CHECK(throttle.allow(held, t0 + 10s));
  CHECK(held == 0);
}

TEST_CASE("a burst's held-back count is reported once by the summary after the interval", "[log-throttle]") {
  boost::asio::io_context io;
  LogThrottle throttle(interval);
  std::vector<std::uint64_t> summaries;
  LogThrottle::clock::time_point summarised{};
  const auto summary = [&](std::uint64_t n) {
    summaries.push_back(n);
    summarised = LogThrottle::clock::now();
  };
  std::uint64_t held = 0;
  const auto started = LogThrottle::clock::now();
  CHECK(throttle.allow(held, io.get_executor(), summary));
  for (int i = 0; i < 7; ++i) CHECK_FALSE(throttle.allow(held, io.get_executor(), summary));
  CHECK(summaries.empty());  // nothing before the io_context runs
  // The timer is the only work: run() ends once it ran, well before 5s.
  io.run_for(5s);
  REQUIRE(summaries.size() == 1);
  CHECK(summaries[0] == 7);
  // Not before the interval that began with the first line was over.
  CHECK(summarised - started >= interval);
  CHECK(throttle.held() == 0);

  // The summary counts as a line: what follows within the interval is held
  // back and summarised again, and nothing is counted twice.
  io.restart();
  CHECK_FALSE(throttle.allow(held, io.get_executor(), summary));
  CHECK_FALSE(throttle.allow(held, io.get_executor(), summary));
  io.run_for(5s);
  REQUIRE(summaries.size() == 2);
  CHECK(summaries[1] == 2);
}

TEST_CASE("no summary when a line went out first and reported the count", "[log-throttle]") {
  boost::asio::io_context io;
  LogThrottle throttle(interval);
  std::vector<std::uint64_t> summaries;
  const auto summary = [&summaries](std::uint64_t n) { summaries.push_back(n); };
  std::uint64_t held = 0;
  REQUIRE(throttle.allow(held, io.get_executor(), summary));
  CHECK_FALSE(throttle.allow(held, io.get_executor(), summary));
  CHECK_FALSE(throttle.allow(held, io.get_executor(), summary));
  CHECK_FALSE(throttle.allow(held, io.get_executor(), summary));
  // A line after the interval (as seen by the caller) takes the count.
  CHECK(throttle.allow(held, LogThrottle::clock::now() + 1s));
  CHECK(held == 3);
  io.run_for(5s);
  CHECK(summaries.empty());
}

TEST_CASE("a throttle destroyed with a summary pending never calls it", "[log-throttle]") {
  boost::asio::io_context io;
  std::optional<std::uint64_t> called;
  {
    LogThrottle throttle(interval);
    std::uint64_t held = 0;
    const auto summary = [&called](std::uint64_t n) { called = n; };
    REQUIRE(throttle.allow(held, io.get_executor(), summary));
    CHECK_FALSE(throttle.allow(held, io.get_executor(), summary));
  }
  io.run_for(5s);
  CHECK_FALSE(called);
}
