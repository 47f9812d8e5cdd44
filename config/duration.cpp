#include <portico/duration.hpp>

#include <charconv>
#include <cstdint>
#include <limits>

#include <fmt/format.h>

#include <portico/text.hpp>

namespace portico {

namespace {

struct Unit {
  std::string_view suffix;
  std::int64_t ms;
};
// Longest suffix first so that "ms" is not read as "m".
constexpr Unit units[] = {{"ms", 1}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}};

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view suffix = text.substr(digits);
  if (digits == 0 || suffix.empty()) {
    return fail("invalid duration {}: expected a whole number followed by a unit (ms, s, m or h), e.g. "
                "\"250ms\", \"10s\", \"2m\"",
                quote_text(text));
  }
  const Unit* unit = nullptr;
  for (const auto& u : units) {
    if (suffix == u.suffix) unit = &u;
  }
  if (unit == nullptr) {
    return fail("invalid duration {}: unknown unit {} (use ms, s, m or h)", quote_text(text), quote_text(suffix));
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  // A year is far beyond any sensible timeout and keeps every later
  // time_point arithmetic clear of overflow.
  constexpr std::int64_t max_ms = std::int64_t{366} * 24 * 3'600'000;
  if (ec != std::errc{} || end != text.data() + digits || value > max_ms / unit->ms) {
    return fail("invalid duration {}: too long (at most 366 days)", quote_text(text));
  }
  return Duration{value * unit->ms};
}

std::string format_duration(Duration d) {
  const std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1'000 == 0) return fmt::format("{}s", ms / 1'000);
  return fmt::format("{}ms", ms);
}

}  // namespace portico
