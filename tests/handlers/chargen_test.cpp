// The chargen handler (RFC 864), driven through the real porticod over
// 127.0.0.1.

#include <thread>

#include <catch2/catch.hpp>

#include "handlers/service_support.hpp"
#include "support/daemon.hpp"

using namespace portico::test;

namespace {

constexpr std::size_t line_size = 74;  // 72 characters and CRLF

// Line i of RFC 864's pattern: 72 characters from offset i (mod 95) of the
// cyclic sequence of printable ASCII, ' ' (32) to '~' (126).
std::string expected_line(std::size_t i) {
  std::string line;
  for (std::size_t j = 0; j < 72; ++j) line += static_cast<char>(32 + (i + j) % 95);
  return line + "\r\n";
}

}  // namespace

TEST_CASE("chargen's first lines are the RFC 864 pattern", "[handlers][chargen]") {
  auto d = Daemon::start(service_config("chargen"));
  Client c(d.port());
  const std::string got = c.read_exactly(3 * line_size, 5s);
  REQUIRE(got.size() == 3 * line_size);
  CHECK(got.substr(0, line_size) == " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n");
  CHECK(got.substr(line_size, line_size) ==
        "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n");
  CHECK(got.substr(2 * line_size) == expected_line(2));
}

TEST_CASE("chargen with line_limit sends exactly that many lines, wrapping after 95, then closes",
          "[handlers][chargen]") {
  auto d = Daemon::start(service_config("chargen", "line_limit = 96\n"));
  Client c(d.port());
  bool closed = false;
  const std::string got = c.read_all(5s, &closed);
  CHECK(closed);
  REQUIRE(got.size() == 96 * line_size);
  for (std::size_t i = 0; i < 96; ++i) {
    INFO("line " << i);
    CHECK(got.substr(i * line_size, line_size) == expected_line(i));
  }
  CHECK(got.substr(95 * line_size) == got.substr(0, line_size));
  CHECK(d.wait_log("sent 96 lines (7104 bytes), the line limit; closing the connection"));
}

TEST_CASE("chargen streams the pattern until the client closes, and then stops", "[handlers][chargen]") {
  auto d = Daemon::start(service_config("chargen"));
  {
    Client c(d.port());
    const std::size_t lines = 20000;  // about 1.4 MiB, many times round the cycle
    const std::string got = c.read_exactly(lines * line_size, 10s);
    REQUIRE(got.size() == lines * line_size);
    bool all_match = true;
    for (std::size_t i = 0; i < lines && all_match; ++i) {
      all_match = got.compare(i * line_size, line_size, expected_line(i)) == 0;
    }
    CHECK(all_match);
  }
  // The next write after the close fails, and the handler ends.
  CHECK(d.wait_log("write failed: ", 5s));
}

TEST_CASE("a chargen client that never reads costs the daemon neither memory nor its other clients",
          "[handlers][chargen]") {
  auto d = Daemon::start(service_config("chargen"));
  {
    Client warm(d.port());
    REQUIRE(warm.read_exactly(100 * line_size, 5s).size() == 100 * line_size);
  }
  const long before = rss_kib(d.pid());
  REQUIRE(before > 0);

  Client idle(d.port());  // connected, never reads
  const auto until = Clock::now() + 2s;
  while (Clock::now() < until) {
    Client other(d.port());
    const auto started = Clock::now();
    CHECK(other.read_exactly(3 * line_size, 2s) == expected_line(0) + expected_line(1) + expected_line(2));
    CHECK(Clock::now() - started < 1s);
    std::this_thread::sleep_for(200ms);
  }

  const long after = rss_kib(d.pid());
  INFO("RSS " << before << " KiB -> " << after << " KiB");
  CHECK(after - before < 4 * 1024);
}
