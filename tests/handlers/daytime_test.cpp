// The daytime handler (RFC 867), driven through the real porticod over
// 127.0.0.1.

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <regex>

#include <catch2/catch.hpp>

#include "handlers/service_support.hpp"
#include "support/daemon.hpp"

using namespace portico::test;

namespace {

const char* const weekdays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
const char* const months[] = {"January", "February", "March",     "April",   "May",      "June",
                              "July",    "August",   "September", "October", "November", "December"};

// A daytime line as documented: "Tuesday, November 24, 2026 18:05:09-UTC\r\n".
struct Daytime {
  std::time_t fields_as_utc;  // the date and time read as if they were UTC
  std::string zone;
};

std::optional<Daytime> parse_daytime(const std::string& line) {
  // Weekday, Month D, YYYY HH:MM:SS-ZONE CRLF
  static const std::regex format(R"(^([A-Z][a-z]+day), ([A-Z][a-z]+) ([1-9]|[12][0-9]|3[01]), ([0-9]{4}) )"
                                 R"(([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])-([A-Za-z]+)\r\n$)");
  std::smatch m;
  if (!std::regex_match(line, m, format)) return std::nullopt;
  std::tm tm{};
  tm.tm_mon = -1;
  for (int i = 0; i < 12; ++i) {
    if (m[2] == months[i]) tm.tm_mon = i;
  }
  if (tm.tm_mon < 0) return std::nullopt;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_year = std::stoi(m[4]) - 1900;
  tm.tm_hour = std::stoi(m[5]);
  tm.tm_min = std::stoi(m[6]);
  tm.tm_sec = std::stoi(m[7]);
  const std::time_t t = timegm(&tm);  // also fills in the weekday of that date
  if (m[1] != weekdays[tm.tm_wday]) return std::nullopt;
  return Daytime{t, m[8]};
}

std::time_t now() { return std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()); }

}  // namespace

TEST_CASE("daytime sends the current UTC time as one documented line, then closes", "[handlers][daytime]") {
  auto d = Daemon::start(service_config("daytime"));
  Client c(d.port());
  bool closed = false;
  const std::string line = c.read_all(5s, &closed);
  CHECK(closed);
  INFO("line: " << line);
  const auto parsed = parse_daytime(line);
  REQUIRE(parsed);
  CHECK(parsed->zone == "UTC");
  CHECK(std::abs(parsed->fields_as_utc - now()) <= 3);
  CHECK(d.wait_log("sending \"" + line.substr(0, line.size() - 2) + "\\r\\n\""));
}

TEST_CASE("daytime with utc = false sends local time and the local zone", "[handlers][daytime]") {
  // A POSIX TZ rule needs no zone database: "XYZ", three hours east of UTC.
  Daemon::Options options;
  options.env = {{"TZ", "XYZ-3"}};
  auto d = Daemon::start(service_config("daytime", "utc = false\n"), options);
  Client c(d.port());
  const std::string line = c.read_all(5s);
  INFO("line: " << line);
  const auto parsed = parse_daytime(line);
  REQUIRE(parsed);
  CHECK(parsed->zone == "XYZ");
  CHECK(std::abs(parsed->fields_as_utc - 3 * 3600 - now()) <= 3);
}

TEST_CASE("daytime ignores what the client sends", "[handlers][daytime]") {
  auto d = Daemon::start(service_config("daytime"));
  Client c(d.port());
  REQUIRE(c.send("what time is it?\r\n"));
  CHECK(parse_daytime(c.read_all(5s)));
}
