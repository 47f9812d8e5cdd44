#pragma once
// Helpers shared by the tests of the classic inetd services (echo, discard,
// daytime, time, chargen).

#include <sys/types.h>

#include <fstream>
#include <string>

namespace portico::test {

// A config with one listener of `handler` on a free port of 127.0.0.1, named
// like the handler, logging at debug level; `options` is appended to the
// listener's table.
inline std::string service_config(const std::string& handler, const std::string& options = "") {
  return "[daemon]\nlog_level = \"debug\"\n[[listener]]\nname = \"" + handler +
         "\"\naddress = \"127.0.0.1:0\"\nhandler = \"" + handler + "\"\n" + options;
}

// The resident set size of process `pid` in KiB (VmRSS), or -1 when unknown.
inline long rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace portico::test
