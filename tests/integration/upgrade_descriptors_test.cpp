// Binary upgrade (SIGUSR2) as the soak test met it: listeners on port 0 and
// the descriptors the new process starts with.

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <regex>
#include <thread>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;

namespace {

std::string listener(const std::string& name) {
  // Without defer_accept, a listener that stops closes its socket at once.
  return "[[listener]]\nname = \"" + name + "\"\naddress = \"127.0.0.1:0\"\ndefer_accept = \"0s\"\nmessage = \"" +
         name + "\\n\"\n";
}

const std::string daemon_table = "[daemon]\nshutdown_timeout = \"2s\"\n";

std::string ask(std::uint16_t port) {
  Client c(port);
  c.send("hi\n");
  return c.read_all(3s);
}

// What each open descriptor of `pid` is ("socket:[1234]", "pipe:[5678]",
// a path), by descriptor.
std::map<int, std::string> open_descriptors(pid_t pid) {
  std::map<int, std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    out[std::stoi(entry.path().filename().string())] = std::filesystem::read_symlink(entry.path(), ec).string();
  }
  return out;
}

std::string describe(const std::map<int, std::string>& fds) {
  std::string out;
  for (const auto& [fd, what] : fds) out += std::to_string(fd) + "=" + what + " ";
  return out;
}

// The process an upgrade started, which outlives the Daemon (it is not the
// test's child): stopped with the test, whatever the test's outcome.
class Upgraded {
 public:
  explicit Upgraded(const Daemon& d) {
    d.signal(SIGUSR2);
    REQUIRE(d.wait_log("serves every listener now"));
    std::smatch m;
    const std::string log = d.log();
    REQUIRE(std::regex_search(log, m, std::regex(R"(upgrade: this process \(pid (\d+)\) serves every listener now)")));
    pid_ = static_cast<pid_t>(std::stol(m[1]));
  }
  ~Upgraded() {
    ::kill(pid_, SIGKILL);
  }
  Upgraded(const Upgraded&) = delete;
  Upgraded& operator=(const Upgraded&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = 0;
};

}  // namespace

TEST_CASE("an upgrade hands each listener on port 0 its own socket and port", "[upgrade]") {
  auto d = Daemon::start(daemon_table + listener("a") + listener("b"), {.listeners = 2});
  const auto a = d.port("a");
  const auto b = d.port("b");
  Upgraded upgraded(d);
  CHECK(d.wait_exit(10s) == 0);
  CHECK_THAT(d.log(), !Contains("closing inherited socket"));
  CHECK_THAT(d.log(), Contains("serving a on 127.0.0.1:" + std::to_string(a) + " (greeting)"));
  CHECK(ask(a) == "a\n");
  CHECK(ask(b) == "b\n");
}

TEST_CASE("an upgraded process holds only the sockets handed over: a listener it removes refuses clients",
          "[upgrade]") {
  auto d = Daemon::start(daemon_table + listener("kept") + listener("gone"), {.listeners = 2});
  const auto gone = d.port("gone");
  const auto before = open_descriptors(d.pid());
  Upgraded upgraded(d);
  CHECK(d.wait_exit(10s) == 0);
  // Nothing of the old process's but the listening sockets: no second copy
  // of them, no descriptor made for the hand-over.
  const auto after = open_descriptors(upgraded.pid());
  INFO("before: " << describe(before) << "\nafter: " << describe(after));
  CHECK(after.size() <= before.size());
  std::map<std::string, int> copies;
  for (const auto& [fd, what] : after) copies[what] += what.starts_with("socket:") ? 1 : 0;
  for (const auto& [what, n] : copies) CHECK(n <= 1);

  // A copy of the socket left open anywhere would keep it listening: the
  // kernel would complete the handshake of a client nobody serves.
  d.rewrite_config(daemon_table + listener("kept"));
  ::kill(upgraded.pid(), SIGHUP);
  REQUIRE(d.wait_log("reload complete: 1 listener(s) kept, 0 added, 1 removed"));
  CHECK(try_connect(gone) < 0);
  CHECK(ask(d.port("kept")) == "kept\n");
}
