#pragma once
// A porticod with a control socket, and porticoctl pointed at it.

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

namespace portico::test {

struct Controlled {
  // The socket's directory: world-writable, so porticod (as nobody) can
  // make the socket there.
  std::unique_ptr<TempDir> dir = std::make_unique<TempDir>();
  std::string socket = (dir->path() / "control.sock").string();

  std::string config(const std::string& listeners, const std::string& daemon = "") const {
    return "[daemon]\ncontrol_socket = \"" + socket + "\"\n" + daemon + "\n" + listeners;
  }
  RunResult ctl(std::vector<std::string> args, Millis timeout = 20s,
                const std::optional<Identity>& as = std::nullopt) const {
    args.insert(args.begin(), {"-s", socket});
    return run_porticoctl(args, timeout, as);
  }
};

// Runs `filter` of jq on `json`, as a script would read porticoctl --json.
inline std::string jq(const std::string& json, const std::string& filter) {
  TempDir dir;
  const std::string in = dir.write("in.json", json);
  const std::string out = (dir.path() / "out").string();
  const std::string command = "jq -e -r '" + filter + "' " + in + " > " + out + " 2>&1";
  const int rc = std::system(command.c_str());
  std::ifstream file(out);
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (!text.empty() && text.back() == '\n') text.pop_back();
  INFO("jq " << filter << " on " << json << ": " << text);
  REQUIRE(rc == 0);
  return text;
}

// A table row with its padding squeezed to one space.
inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

inline std::string squeeze(const std::string& text) { return std::regex_replace(text, std::regex(" +"), " "); }

}  // namespace portico::test
