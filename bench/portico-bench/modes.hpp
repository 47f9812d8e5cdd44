#pragma once
// The four load shapes. Each fills ctx.stats and says how to report it.

#include "engine.hpp"

namespace bench {

struct RunResult {
  double seconds = 0;        // the measurement window (idle: the hold time)
  double ops_per_sec = 0;    // idle: connections established per second of ramp-up
  // idle only
  bool idle = false;
  std::uint64_t attempted = 0;
  std::uint64_t established = 0;
  std::uint64_t server_closed = 0;
  double ramp_seconds = 0;
};

RunResult run_greeting(Context& ctx);
RunResult run_echo(Context& ctx);
RunResult run_idle(Context& ctx);
RunResult run_stream(Context& ctx);

// Most modes: ops over the window.
RunResult timed_result(const Stats& stats);

// The bytes echo and stream send: a fixed pattern whose period (251, a
// prime) doesn't divide typical chunk sizes, so a shifted or repeated
// chunk fails the byte comparison.
std::vector<char> make_payload(std::size_t size);

// Echo and stream: --connections persistent connections of type C, each
// sending the one payload of --size bytes, for the timed window.
template <typename C>
RunResult run_with_payload(Context& ctx) {
  const auto payload = make_payload(ctx.options.size);
  Conns conns;
  for (unsigned i = 0; i < ctx.options.connections; ++i) conns.push_back(std::make_unique<C>(ctx, payload));
  run_timed(ctx, conns);
  return timed_result(ctx.stats);
}

}  // namespace bench
