// Fuzz target: durations as a config writes them ("250ms", "10s", "2m",
// "1h"), parse_duration and format_duration.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <portico/duration.hpp>

#include "check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto duration = portico::parse_duration(text, error);
  if (!duration) {
    FUZZ_CHECK(error.starts_with("invalid duration \""), error);
    return 0;
  }
  const auto ms = std::to_string(duration->count()) + "ms";
  // At most 366 days: later time_point arithmetic never overflows.
  FUZZ_CHECK(duration->count() >= 0 && *duration <= std::chrono::hours(366 * 24), ms);

  // format(parse(x)) parses to the same value, and is the shortest
  // spelling: never longer than the one it came from.
  const std::string spelled = portico::format_duration(*duration);
  std::string again_error;
  const auto again = portico::parse_duration(spelled, again_error);
  FUZZ_CHECK(again && *again == *duration, ms + " spelled " + spelled + ": " + again_error);
  FUZZ_CHECK(spelled.size() <= text.size(), ms + " spelled " + spelled);
  return 0;
}
