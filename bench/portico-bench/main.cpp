// portico-bench: a single-threaded epoll load generator for portico and its
// peers. Parses the command line, runs one mode, prints one report.

#include <exception>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "engine.hpp"
#include "modes.hpp"
#include "options.hpp"
#include "report.hpp"

namespace {

int usage_error(const std::string& message) {
  fmt::print(stderr, "portico-bench: {}\nTry 'portico-bench --help'.\n", message);
  return bench::kExitUsage;
}

bench::RunResult run_mode(bench::Context& ctx) {
  switch (ctx.options.mode) {
    case bench::Mode::greeting: return bench::run_greeting(ctx);
    case bench::Mode::echo: return bench::run_echo(ctx);
    case bench::Mode::idle: return bench::run_idle(ctx);
    case bench::Mode::stream: return bench::run_stream(ctx);
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) try {
  bench::Options options;
  std::string error;
  switch (bench::parse_options(argc, argv, options, error, std::cout)) {
    case bench::ParseOutcome::help:
    case bench::ParseOutcome::version: return bench::kExitOk;
    case bench::ParseOutcome::usage_error: return usage_error(error);
    case bench::ParseOutcome::run: break;
  }

  const auto target = bench::resolve(options.host, options.port, error);
  if (!target) return usage_error(error);
  if (options.source_range && options.source_range->family != target->family()) {
    return usage_error("--source-range and --host are of different address families");
  }
  // Idle needs more ports than one source address has; spread by default.
  if (options.mode == bench::Mode::idle && !options.source_range && target->family() == AF_INET) {
    options.source_range = bench::parse_source_range(bench::kDefaultSourceRange, error);
  }
  const auto fd_limit = bench::raise_fd_limit();
  if (options.connections + 32 > fd_limit) {
    return usage_error(fmt::format("{} connections need more open files than the limit of {} (ulimit -n)",
                                   options.connections, fd_limit));
  }

  std::unique_ptr<bench::TlsClient> tls;
  if (options.tls) {
    tls = bench::TlsClient::create(options, error);
    if (!tls) {
      fmt::print(stderr, "portico-bench: {}\n", error);
      return bench::kExitNothingSucceeded;
    }
  }

  bench::install_stop_handlers();
  bench::Engine engine;
  bench::Context ctx{options, *target,
                     options.source_range ? bench::SourcePicker(*options.source_range) : bench::SourcePicker(),
                     engine, {}};
  ctx.tls = tls.get();
  const auto result = run_mode(ctx);

  const bench::Report report{options, *target, ctx.stats, result, bench::stop_requested(), tls.get()};
  std::cout << (options.json ? bench::format_json(report) : bench::format_human(report)) << std::flush;
  const bool any = result.idle ? result.established > 0 : ctx.stats.ops() > 0;
  return any ? bench::kExitOk : bench::kExitNothingSucceeded;
} catch (const std::exception& e) {
  fmt::print(stderr, "portico-bench: {}\n", e.what());
  return bench::kExitNothingSucceeded;
}
