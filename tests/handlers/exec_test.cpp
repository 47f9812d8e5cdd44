// The exec handler, driven through the real porticod over 127.0.0.1.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;
using Catch::Matchers::Matches;

namespace {

// An exec listener on a free port of 127.0.0.1, logging at debug level.
// `command` is a TOML array; `extra` is appended to the listener's table.
std::string exec_config(const std::string& command, const std::string& extra = "", const std::string& daemon = "") {
  return "[daemon]\nlog_level = \"debug\"\n" + daemon +
         "[[listener]]\nname = \"exec\"\naddress = \"127.0.0.1:0\"\nhandler = \"exec\"\ncommand = " + command + "\n" +
         extra;
}

std::uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

std::set<std::string> lines(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.insert(line);
  return out;
}

// The pid in the first log line matching `pattern` (with one capture group), or "".
std::string first_match(const std::string& log, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(log, m, std::regex(pattern))) return {};
  return m[1];
}

}  // namespace

TEST_CASE("exec runs the program with the connection as stdin and stdout", "[handlers][exec]") {
  auto d = Daemon::start(exec_config(R"(["/bin/cat"])"));
  Client c(d.port());
  REQUIRE(c.send("hello, cat\n"));
  c.shutdown_write();
  bool closed = false;
  CHECK(c.read_all(5s, &closed) == "hello, cat\n");
  CHECK(closed);
  CHECK(d.wait_log("exited with status 0 after"));
}

TEST_CASE("exec looks a bare program name up in PATH at load time", "[handlers][exec]") {
  auto d = Daemon::start(exec_config(R"(["cat"])"));
  Client c(d.port());
  REQUIRE(c.send("found\n"));
  c.shutdown_write();
  CHECK(c.read_all(5s) == "found\n");
}

TEST_CASE("exec passes arguments as argv, never through a shell of its own", "[handlers][exec]") {
  auto d = Daemon::start(exec_config(R"(["/bin/sh", "-c", "echo $TCPREMOTEIP $TCPREMOTEPORT", "ignored; rm -rf /"])"));
  Client c(d.port());
  CHECK(c.read_all(5s) == "127.0.0.1 " + std::to_string(local_port(c.fd())) + "\n");
}

TEST_CASE("exec gives the program only env and the UCSPI variables", "[handlers][exec]") {
  auto d = Daemon::start(exec_config(R"(["/usr/bin/env"])", "env = { GREETING = \"hi there\", LANG = \"C\" }\n"),
                         Daemon::Options{.env = {{"SECRET_OF_THE_DAEMON", "x"}}});
  Client c(d.port());
  const auto env = lines(c.read_all(5s));
  CHECK(env == std::set<std::string>{
                   "GREETING=hi there",
                   "LANG=C",
                   "PROTO=TCP",
                   "TCPREMOTEIP=127.0.0.1",
                   "TCPREMOTEPORT=" + std::to_string(local_port(c.fd())),
                   "TCPLOCALIP=127.0.0.1",
                   "TCPLOCALPORT=" + std::to_string(d.port()),
               });
}

TEST_CASE("exec on a Unix socket listener sets PROTO=UNIX and no TCP variables", "[handlers][exec]") {
  TempDir dir;
  const std::string path = (dir.path() / "exec.sock").string();
  auto d = Daemon::start("[[listener]]\nname = \"u\"\naddress = \"unix:" + path +
                         "\"\nhandler = \"exec\"\ncommand = [\"/usr/bin/env\"]\n");
  auto c = Client::unix_socket(path);
  CHECK(lines(c.read_all(5s)) == std::set<std::string>{"PROTO=UNIX"});
}

TEST_CASE("no descriptor of the daemon reaches the program", "[handlers][exec]") {
  // Several listeners and a client in flight give the daemon more to leak.
  auto d = Daemon::start(exec_config(R"(["/bin/ls", "-1", "/proc/self/fd"])") +
                             "[[listener]]\nname = \"other\"\naddress = \"127.0.0.1:0\"\n",
                         Daemon::Options{.listeners = 2});
  Client idle(d.port("other"));
  Client c(d.port("exec"));
  const auto fds = lines(c.read_all(5s));
  // 0, 1 and 2, plus the directory ls reads /proc/self/fd through.
  CHECK(fds.size() == 4);
  CHECK(fds.count("0") == 1);
  CHECK(fds.count("1") == 1);
  CHECK(fds.count("2") == 1);
}

TEST_CASE("the program starts with no signal blocked or ignored", "[handlers][exec]") {
  // porticod itself ignores SIGPIPE and blocks or catches others.
  auto d = Daemon::start(exec_config(R"x(["/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])x"));
  Client c(d.port());
  CHECK(c.read_all(5s) == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

TEST_CASE("exec logs the program's stderr with its pid", "[handlers][exec]") {
  auto d = Daemon::start(exec_config(R"(["/bin/sh", "-c", "echo first >&2; printf 'no newline\\033[31m' >&2; exit 3"])"));
  Client c(d.port());
  CHECK(c.wait_closed(5s));
  REQUIRE(d.wait_log("exited with status 3"));
  const std::string log = d.log();
  const std::string pid = first_match(log, R"(exec pid (\d+) stderr: first)");
  REQUIRE(!pid.empty());
  // Escape sequences are neutralised; the unfinished last line still comes.
  CHECK_THAT(log, Contains("exec pid " + pid + " stderr: no newline\\x1b[31m"));
  CHECK_THAT(log, Contains("exec pid " + pid + " exited with status 3 after"));
}

TEST_CASE("exec with stderr = \"null\" discards it", "[handlers][exec]") {
  auto d = Daemon::start(exec_config(R"(["/bin/sh", "-c", "echo secret >&2; echo out"])", "stderr = \"null\"\n"));
  Client c(d.port());
  CHECK(c.read_all(5s) == "out\n");
  REQUIRE(d.wait_log("exited with status 0"));
  CHECK_THAT(d.log(), !Contains("secret"));
}

TEST_CASE("exec kills a program that outlives its timeout", "[handlers][exec]") {
  auto d = Daemon::start(exec_config(R"(["/bin/sleep", "30"])", "timeout = \"300ms\"\n"));
  Client c(d.port());
  const auto started = Clock::now();
  CHECK(c.wait_closed(5s));
  const auto took = Clock::now() - started;
  CHECK(took >= 250ms);
  CHECK(took < 2s);
  CHECK(d.wait_log("timed out after 300ms: sending SIGTERM"));
  CHECK(d.wait_log("killed by SIGTERM after"));
}

TEST_CASE("exec follows SIGTERM with SIGKILL for a program that ignores it", "[handlers][exec]") {
  // The shell and its sleep both ignore SIGTERM; the whole group is killed.
  auto d = Daemon::start(exec_config(R"(["/bin/sh", "-c", "trap '' TERM; /bin/sleep 30; echo survived"])",
                                     "timeout = \"100ms\"\n"));
  Client c(d.port());
  const auto started = Clock::now();
  bool closed = false;
  CHECK(c.read_all(6s, &closed).empty());
  CHECK(closed);
  CHECK(Clock::now() - started < 4s);
  CHECK(d.wait_log("still running 2s after SIGTERM: sending SIGKILL"));
  CHECK(d.wait_log("killed by SIGKILL after"));
}

TEST_CASE("exec closes connections beyond max_instances at once", "[handlers][exec]") {
  auto d = Daemon::start(exec_config(R"(["/bin/cat"])", "max_instances = 1\n"));
  Client first(d.port());
  REQUIRE(first.send("one\n"));
  REQUIRE(first.read_exactly(4, 5s) == "one\n");  // its cat is running
  Client second(d.port());
  CHECK(second.wait_closed(2s));
  CHECK(d.wait_log("max_instances (1) reached: closing the connection"));
  // Once the first ends, there is room again.
  first.shutdown_write();
  CHECK(first.wait_closed(5s));
  REQUIRE(d.wait_log("exited with status 0"));
  Client third(d.port());
  REQUIRE(third.send("three\n"));
  third.shutdown_write();
  CHECK(third.read_all(5s) == "three\n");
}

TEST_CASE("a server shutdown stops running programs", "[handlers][exec]") {
  auto d = Daemon::start(exec_config(R"(["/bin/sleep", "30"])", "", "shutdown_timeout = \"200ms\"\n"));
  Client c(d.port());
  REQUIRE(d.wait_log("started: /bin/sleep"));
  d.signal(SIGTERM);
  CHECK(c.wait_closed(5s));
  CHECK(d.wait_exit(5s) == 0);
  CHECK_THAT(d.log(), Contains("stopped by the server: sending SIGTERM"));
  CHECK_THAT(d.log(), Contains("killed by SIGTERM"));
}

TEST_CASE("exec runs the program as the configured user", "[handlers][exec]") {
  if (geteuid() != 0) {
    WARN("not root: cannot test user =");
    return;
  }
  auto d = Daemon::start(exec_config(R"(["/usr/bin/id", "-u"])", "user = \"nobody\"\n", "allow_root = true\n"),
                         Daemon::Options{.as_root = true});
  Client c(d.port());
  CHECK(c.read_all(5s) == "65534\n");
}

TEST_CASE("exec's command and user are checked at load time", "[handlers][exec]") {
  TempDir dir;
  const auto check = [&](const std::string& options, const std::string& message, bool as_root = false) {
    INFO(options);
    const auto path = dir.write("e.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"exec\"\n" + options);
    const auto r = run_porticod({"--check", "-c", path}, 10s, as_root);
    CHECK(r.exit_code == 78);
    // Positioned at the value of the first line's key.
    const std::string column = std::to_string(options.find('=') + 3);
    CHECK_THAT(r.err, Contains(path + ":4:" + column + ": " + message));
  };
  check("command = [\"/nonexistent/prog\"]",
        "command \"/nonexistent/prog\" cannot be run: No such file or directory");
  check("command = [\"/etc/passwd\"]", "command \"/etc/passwd\" cannot be run: not executable");
  check("command = [\"bin/cat\"]", "command \"bin/cat\" must be an absolute path, or a bare name looked up in PATH");
  check("command = [\"no-such-program-anywhere\"]", "command \"no-such-program-anywhere\" is not an executable file in PATH");
  check("command = []", "\"command\" needs at least the program to run");
  check("env = { PROTO = \"x\" }\ncommand = [\"/bin/cat\"]", "\"env\" cannot set PROTO");
  if (geteuid() == 0) {
    check("user = \"no-such-user\"\ncommand = [\"/bin/cat\"]", "unknown user \"no-such-user\"", true);
    // porticod itself runs as nobody here.
    check("user = \"nobody\"\ncommand = [\"/bin/cat\"]", "\"user\" needs porticod to run as root");
  }
}
