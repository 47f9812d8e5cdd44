#include "daytime.hpp"

#include <array>
#include <chrono>
#include <ctime>
#include <regex>
#include <string>

#include <fmt/format.h>
#include <boost/asio/buffer.hpp>

#include <portico/connection.hpp>
#include <portico/probe.hpp>

namespace portico::handlers {

namespace {

namespace asio = boost::asio;
using spdlog::level::debug;

// English names whatever the process locale, so the line is the same for
// every client and every host.
constexpr std::array<const char*, 7> weekdays = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                 "Thursday", "Friday", "Saturday"};
constexpr std::array<const char*, 12> months = {"January", "February", "March",     "April",   "May",      "June",
                                                "July",    "August",   "September", "October", "November", "December"};

// "Tuesday, November 24, 2026 18:05:09-UTC\r\n": RFC 867's suggested
// "Weekday, Month Day, Year Time-Zone".
std::string daytime_line(std::time_t now, bool utc) {
  std::tm tm{};
  std::array<char, 64> zone{'U', 'T', 'C'};
  if (utc) {
    gmtime_r(&now, &tm);
  } else {
    localtime_r(&now, &tm);
    if (std::strftime(zone.data(), zone.size(), "%Z", &tm) == 0) zone[0] = '\0';
  }
  return fmt::format("{}, {} {}, {} {:02}:{:02}:{:02}-{}\r\n", weekdays.at(tm.tm_wday), months.at(tm.tm_mon),
                     tm.tm_mday, tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zone.data());
}

class Daytime final : public Handler {
 public:
  explicit Daytime(const Options& options) : utc_(options.boolean("utc")) {}

  asio::awaitable<void> serve(Connection& conn) override {
    conn.log(debug, "connection from {}", conn.peer());
    // Whatever the client sends is ignored, as RFC 867 says.
    const std::string line = daytime_line(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()), utc_);
    conn.log(debug, "sending {:?}", line);
    const IoResult written = co_await conn.write(asio::buffer(line));
    if (!written.ok()) {
      conn.log(debug, "write failed: {}", written.ec.message());
      co_return;
    }
    conn.log(debug, "closing the connection");
  }

 private:
  bool utc_;
};

// Expects one line as daytime_line() writes it, then the close.
asio::awaitable<Result<std::string>> probe(const ProbeTarget& target) {
  static const std::regex form(
      R"((Sunday|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday), (January|February|March|April|May|June|July|)"
      R"(August|September|October|November|December) [0-9]{1,2}, [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}-[^\r\n]*\r\n)");
  auto stream = co_await connect_probe(target);
  if (!stream) co_return stream.error();
  auto got = co_await probe_read_all(**stream, 256);
  if (!got) co_return got.error();
  if (!std::regex_match(*got, form)) {
    co_return fail("expected \"Weekday, Month D, YYYY HH:MM:SS-ZONE\\r\\n\", got {}", probe_excerpt(*got));
  }
  co_return fmt::format("answered {}", probe_excerpt(*got));
}

}  // namespace

HandlerType daytime_type() {
  return HandlerType{
      .name = "daytime",
      .doc = "send the date and time as one line, then close (RFC 867)",
      .options =
          {
              {.name = "utc",
               .type = OptionType::boolean,
               .default_value = true,
               .doc = "send \"Weekday, Month D, YYYY HH:MM:SS-UTC\\r\\n\" in English, e.g. \"Tuesday, November 24, "
                      "2026 18:05:09-UTC\\r\\n\"; false: local time, ending in the local zone's abbreviation"},
          },
      .create = [](const Options& options) { return std::make_unique<Daytime>(options); },
      .probe = probe,
  };
}

}  // namespace portico::handlers
