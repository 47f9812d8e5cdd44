#pragma once
// The assertion of the fuzz targets. A property that does not hold aborts,
// like any crash, so libFuzzer saves the input that broke it; the message
// says which property and shows the values involved.

#include <cstdio>
#include <cstdlib>
#include <string>

namespace portico::fuzz {

[[noreturn]] inline void fail(const char* condition, const char* file, int line, const std::string& detail = {}) {
  std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, condition);
  if (!detail.empty()) std::fprintf(stderr, "  %s\n", detail.c_str());
  std::abort();
}

}  // namespace portico::fuzz

// FUZZ_CHECK(condition) or FUZZ_CHECK(condition, detail): detail is a
// std::string, built only when the check fails.
#define FUZZ_CHECK(condition, ...)                                                              \
  do {                                                                                          \
    if (!(condition)) ::portico::fuzz::fail(#condition, __FILE__, __LINE__ __VA_OPT__(, ) __VA_ARGS__); \
  } while (false)
