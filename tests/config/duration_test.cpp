#include <catch2/catch.hpp>

#include <portico/duration.hpp>

using namespace std::chrono_literals;
using portico::Duration;

TEST_CASE("durations parse with ms, s, m and h", "[config][duration]") {
  std::string error;
  CHECK(portico::parse_duration("250ms", error) == Duration(250));
  CHECK(portico::parse_duration("10s", error) == Duration(10s));
  CHECK(portico::parse_duration("2m", error) == Duration(2min));
  CHECK(portico::parse_duration("1h", error) == Duration(1h));
  CHECK(portico::parse_duration("0s", error) == Duration(0));
}

TEST_CASE("bad durations say what is wrong", "[config][duration]") {
  std::string error;
  CHECK_FALSE(portico::parse_duration("10", error));
  CHECK(error == "invalid duration \"10\": expected a whole number followed by a unit (ms, s, m or h), e.g. "
                 "\"250ms\", \"10s\", \"2m\"");
  CHECK_FALSE(portico::parse_duration("10sec", error));
  CHECK(error == "invalid duration \"10sec\": unknown unit \"sec\" (use ms, s, m or h)");
  CHECK_FALSE(portico::parse_duration("-1s", error));
  CHECK_FALSE(portico::parse_duration("1.5s", error));
  CHECK_FALSE(portico::parse_duration("", error));
  CHECK_FALSE(portico::parse_duration("99999999999999999999s", error));
  CHECK(error == "invalid duration \"99999999999999999999s\": too long (at most 366 days)");
}

TEST_CASE("durations format back to their shortest exact spelling", "[config][duration]") {
  CHECK(portico::format_duration(Duration(250)) == "250ms");
  CHECK(portico::format_duration(Duration(10s)) == "10s");
  CHECK(portico::format_duration(Duration(120s)) == "2m");
  CHECK(portico::format_duration(Duration(1500)) == "1500ms");
  CHECK(portico::format_duration(Duration(0)) == "0s");
}
