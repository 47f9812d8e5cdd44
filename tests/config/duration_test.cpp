#include <catch2/catch.hpp>

#include <portico/duration.hpp>

using namespace std::chrono_literals;
using portico::Duration;

TEST_CASE("durations parse with ms, s, m and h", "[config][duration]") {
  CHECK(*portico::parse_duration("250ms") == Duration(250));
  CHECK(*portico::parse_duration("10s") == Duration(10s));
  CHECK(*portico::parse_duration("2m") == Duration(2min));
  CHECK(*portico::parse_duration("1h") == Duration(1h));
  CHECK(*portico::parse_duration("0s") == Duration(0));
}

TEST_CASE("bad durations say what is wrong", "[config][duration]") {
  CHECK(portico::parse_duration("10").error().message() == "invalid duration \"10\": expected a whole number followed by a unit (ms, s, m or h), e.g. "
                 "\"250ms\", \"10s\", \"2m\"");
  CHECK(portico::parse_duration("10sec").error().message() == "invalid duration \"10sec\": unknown unit \"sec\" (use ms, s, m or h)");
  CHECK_FALSE(portico::parse_duration("-1s").has_value());
  CHECK_FALSE(portico::parse_duration("1.5s").has_value());
  CHECK_FALSE(portico::parse_duration("").has_value());
  CHECK(portico::parse_duration("99999999999999999999s").error().message() == "invalid duration \"99999999999999999999s\": too long (at most 366 days)");
}

TEST_CASE("durations format back to their shortest exact spelling", "[config][duration]") {
  CHECK(portico::format_duration(Duration(250)) == "250ms");
  CHECK(portico::format_duration(Duration(10s)) == "10s");
  CHECK(portico::format_duration(Duration(120s)) == "2m");
  CHECK(portico::format_duration(Duration(1500)) == "1500ms");
  CHECK(portico::format_duration(Duration(0)) == "0s");
}
