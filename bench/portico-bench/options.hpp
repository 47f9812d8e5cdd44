#pragma once
// The command line of portico-bench, parsed into one plain struct.

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "parse.hpp"

namespace bench {

enum class Mode { greeting, echo, idle, stream };
enum class Direction { up, down };  // stream: client->server or server->client

const char* mode_name(Mode mode);

struct Options {
  Mode mode = Mode::greeting;
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  unsigned connections = 50;
  Nanos duration = std::chrono::seconds(5);
  Nanos warmup = std::chrono::seconds(1);
  Nanos timeout = std::chrono::seconds(5);
  std::uint64_t size = 1024;
  std::string message = "GET request\n";
  std::string expect = "Hello from server!\n";
  bool json = false;
  // Idle mode always binds to a source address (default range below);
  // the other modes only when --source-range is given.
  std::optional<SourceRange> source_range;
  Direction direction = Direction::up;
  // The server's processes, sampled together and summed (a TLS front-end
  // and the server behind it, a master and its workers); empty: none.
  std::vector<int> server_pids;
  std::uint64_t round_trips = 0;  // echo: reconnect after this many; 0: never
  bool tls = false;               // TLS 1.3 on every connection
  bool tls_resume = false;        // each slot resumes with its newest ticket
  std::string tls_ca;             // verify the server's chain against it; empty: don't
};

inline constexpr const char* kDefaultSourceRange = "127.0.0.1-127.0.0.254";

// BSD sysexits: what the tool exits with.
inline constexpr int kExitOk = 0;
inline constexpr int kExitNothingSucceeded = 1;
inline constexpr int kExitUsage = 64;

enum class ParseOutcome { run, help, version, usage_error };

// Parses argv into `options`. On help/version the text has been written to
// `out`; on a usage error a one-line explanation is in `error`.
ParseOutcome parse_options(int argc, char** argv, Options& options, std::string& error, std::ostream& out);

}  // namespace bench
