#pragma once
// Printing a run's results, for people or as one JSON object.

#include <cstdio>
#include <string>

#include "modes.hpp"

namespace bench {

struct Report {
  const Options& options;
  const Endpoint& target;
  const Stats& stats;
  const RunResult& result;
  bool interrupted = false;
  const TlsClient* tls = nullptr;  // with --tls
};

std::string format_human(const Report& report);
std::string format_json(const Report& report);

// "812 µs", "1.25 ms", "2.00 s": latencies in the unit that reads best.
std::string format_latency(std::uint64_t nanos);

}  // namespace bench
