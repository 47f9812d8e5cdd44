#pragma once
// porticoctl's command line:
//
//   porticoctl [-s PATH] [-c FILE] [--json] COMMAND [ARGUMENTS] [--json]
//
// Pure parsing, for the program and its unit tests.

#include <string>
#include <vector>

#include <portico/result.hpp>

#include "ctl/protocol.hpp"

namespace portico::control {

inline constexpr const char* default_config_file = "/etc/portico/portico.toml";

struct Cli {
  std::string socket;                        // -s, --socket: else the config's control_socket
  std::string config = default_config_file;  // -c, --config before the command
  bool help = false;
  bool version = false;
  Request request;  // checked as porticod would (check_request)
};

// `args` without the program's name. After the command, --json, --timeout
// DURATION (drain, upgrade) and -c FILE (diff: the file to compare) may come; "--"
// makes every later word an argument.
Result<Cli> parse_command_line(const std::vector<std::string>& args);

// What --help prints.
std::string usage();

}  // namespace portico::control
