#pragma once
// The command an exec listener runs, checked and resolved at load time: the
// program's path (looked up in PATH when bare), and the user and group it
// runs as. Doing it once here means a typo fails `porticod --check`, and a
// child never looks up names between fork and exec.

#include <string>
#include <vector>

#include <portico/options.hpp>

#include "child_process.hpp"

namespace portico::handlers {

// A mistake in the options, with the option it concerns.
struct CommandProblem {
  std::string option;
  std::string message;
};

// Reads "command", "user" and "group". Fills `problems` (and returns a
// partial command) when something is wrong.
Command resolve_command(const Options& options, std::vector<CommandProblem>& problems);

}  // namespace portico::handlers
