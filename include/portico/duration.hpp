#pragma once
// Durations in config files: an integer followed by a unit, e.g. "250ms", "10s", "2m", "1h".

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <portico/result.hpp>

namespace portico {

using Duration = std::chrono::milliseconds;

// Parses "<integer><unit>" with unit ms, s, m or h. An error says what is
// wrong with `text`.
Result<Duration> parse_duration(std::string_view text);

// The shortest exact spelling of `d` in the syntax above ("10s", "250ms", "2m").
std::string format_duration(Duration d);

}  // namespace portico
