// porticoctl against a real porticod: each command's output and exit code.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <filesystem>
#include <future>
#include <thread>

#include "integration/control_support.hpp"

using namespace portico::test;

namespace {

const std::string hello_and_echo = R"(
[[listener]]
name = "hello"
address = "127.0.0.1:0"

[[listener]]
name = "echo"
address = "127.0.0.1:0"
handler = "echo"
)";

std::string ask_hello(std::uint16_t port) {
  Client c(port);
  c.send("hi\n");
  return c.read_all(3s);
}

}  // namespace

TEST_CASE("porticoctl status shows each listener's address, handler, state and counters", "[control]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});
  REQUIRE(ask_hello(d.port("hello")) == "Hello from server!\n");
  const auto status = c.ctl({"status"});
  INFO(status.out << status.err);
  CHECK(status.exit_code == 0);
  CHECK(status.out.starts_with("porticod 0.2.0, pid " + std::to_string(d.pid()) + ", up "));
  CHECK(contains(status.out, "\nconfig " + d.config_path() + ", loaded "));
  CHECK(contains(status.out, "; reloads: 0 ok, 0 failed\n2 listener(s), 0 open connection(s)\n"));
  CHECK(contains(squeeze(status.out), "\nLISTENER ADDRESS HANDLER STATE OPEN ACCEPTED REFUSED IN OUT\n"));
  CHECK(contains(squeeze(status.out),
                 "\nhello 127.0.0.1:" + std::to_string(d.port("hello")) + " greeting serving 0 1 0 3 19\n"));
  CHECK(contains(squeeze(status.out),
                 "\necho 127.0.0.1:" + std::to_string(d.port("echo")) + " echo serving 0 0 0 0 0\n"));
  CHECK(status.err.empty());

  const auto json = c.ctl({"status", "--json"});
  CHECK(json.exit_code == 0);
  CHECK(jq(json.out, ".pid") == std::to_string(d.pid()));
  CHECK(jq(json.out, ".config") == d.config_path());
  CHECK(jq(json.out, ".listeners | map(.name) | join(\",\")") == "hello,echo");
  CHECK(jq(json.out, ".listeners[0] | [.state, .accepted, .bytes_received, .bytes_sent, .refused.total] | @csv") ==
        "\"serving\",1,3,19,0");
  // --json before the command too
  CHECK(jq(c.ctl({"--json", "status"}).out, ".listeners | length") == "2");
}

TEST_CASE("porticoctl connections lists the open connections, of one listener or all", "[control]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});
  Client session(d.port("echo"));
  REQUIRE(session.send("abc\n"));
  REQUIRE(session.read_exactly(4) == "abc\n");
  sockaddr_in local{};
  socklen_t length = sizeof local;
  getsockname(session.fd(), reinterpret_cast<sockaddr*>(&local), &length);
  const std::string peer = "127.0.0.1:" + std::to_string(ntohs(local.sin_port));

  const auto all = c.ctl({"connections"});
  INFO(all.out << all.err);
  CHECK(all.exit_code == 0);
  const std::regex row("LISTENER +PEER +AGE +IN +OUT +STATE\necho +" + peer +
                       " +[0-9.]+(ms|s) +4 +4 +reading\n");
  CHECK(std::regex_match(all.out, row));
  CHECK(std::regex_match(c.ctl({"connections", "echo"}).out, row));
  const auto none = c.ctl({"connections", "hello"});
  CHECK(none.exit_code == 0);
  CHECK(none.out == "no open connections\n");

  const auto json = c.ctl({"connections", "--json"});
  CHECK(jq(json.out, ".connections[0] | [.listener, .peer, .bytes_received, .bytes_sent, .state] | @csv") ==
        "\"echo\",\"" + peer + "\",4,4,\"reading\"");

  const auto unknown = c.ctl({"connections", "nosuch"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.err == "porticoctl: no listener named \"nosuch\"\n");
}

TEST_CASE("porticoctl reload answers what changed, or the file's errors with exit 78 while the old config serves",
          "[control][reload]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});

  d.rewrite_config(c.config(R"(
[[listener]]
name = "hello"
address = "127.0.0.1:0"
message = "reloaded\n"

[[listener]]
name = "discard"
address = "127.0.0.1:0"
handler = "discard"
)"));
  const auto ok = c.ctl({"reload"});
  INFO(ok.out << ok.err);
  CHECK(ok.exit_code == 0);
  // Listeners on port 0 are matched by name too: "echo" is gone, and
  // "discard" is new, on a socket of its own.
  CHECK(ok.out == "reloaded " + d.config_path() + ": 1 listener(s) kept, 1 added, 1 removed\n"
                  "= listener \"hello\" 127.0.0.1:0 (greeting)\n"
                  "+ listener \"discard\" 127.0.0.1:0 (discard)\n"
                  "- listener \"echo\" 127.0.0.1:0 (echo)\n"
                  "~ listener \"hello\" message: \"Hello from server!\\n\" -> \"reloaded\\n\"\n");
  CHECK(ask_hello(d.port("hello")) == "reloaded\n");
  CHECK(d.wait_log("porticoctl reload by uid 0 (pid "));

  d.rewrite_config(c.config("[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\nmesage = \"typo\"\n"));
  const auto broken = c.ctl({"reload"});
  CHECK(broken.exit_code == 78);
  CHECK(broken.out == d.config_path() + ":7:1: unknown key \"mesage\" in listener #1 (did you mean \"message\"?)\n");
  CHECK(broken.err == "porticoctl: reload failed: 1 error(s) in " + d.config_path() +
                          "; still serving the previous configuration\n");
  CHECK(ask_hello(d.port("hello")) == "reloaded\n");

  const auto json = c.ctl({"reload", "--json"});
  CHECK(json.exit_code == 78);
  CHECK(jq(json.out, ".code") == "78");
  CHECK(jq(json.out, ".details[0]") ==
        d.config_path() + ":7:1: unknown key \"mesage\" in listener #1 (did you mean \"message\"?)");
  CHECK(jq(c.ctl({"status", "--json"}).out, ".reloads | [.ok, .failed] | @csv") == "1,2");
}

TEST_CASE("porticoctl reload of a config that cannot be bound fails with exit 1 and changes nothing",
          "[control][reload]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});
  // A port something else holds.
  const int taken = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(taken, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(listen(taken, 1) == 0);
  socklen_t length = sizeof address;
  getsockname(taken, reinterpret_cast<sockaddr*>(&address), &length);
  const std::string port = std::to_string(ntohs(address.sin_port));
  d.rewrite_config(c.config(hello_and_echo + "[[listener]]\nname = \"busy\"\naddress = \"127.0.0.1:" + port + "\"\n"));
  const auto failed = c.ctl({"reload"});
  close(taken);
  CHECK(failed.exit_code == 1);
  CHECK(failed.out.empty());
  CHECK(contains(failed.err, "porticoctl: reload failed: listener \"busy\": cannot bind to 127.0.0.1:" + port));
  CHECK(contains(failed.err, "; still serving the previous configuration\n"));
  CHECK(ask_hello(d.port("hello")) == "Hello from server!\n");
}

TEST_CASE("porticoctl reload under a client loop refuses no connection", "[control][reload]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});
  const auto port = d.port("hello");
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::atomic<int> failed{0};
  std::thread clients([&] {
    const auto until = Clock::now() + 20s;
    while (!stop && Clock::now() < until) {
      try {
        const std::string answer = ask_hello(port);
        if (answer == "Hello from server!\n" || answer == "second\n") {
          ++answered;
        } else {
          ++failed;
        }
      } catch (const std::exception&) {
        ++failed;
      }
    }
  });
  for (int i = 0; i < 6; ++i) {
    const std::string message = i % 2 == 0 ? "second\\n" : "Hello from server!\\n";
    d.rewrite_config(c.config("[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\nmessage = \"" + message +
                              "\"\n[[listener]]\nname = \"echo\"\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\n"));
    const auto reloaded = c.ctl({"reload"});
    CHECK(reloaded.exit_code == 0);
  }
  stop = true;
  clients.join();
  CHECK(failed == 0);
  CHECK(answered > 6);
}

TEST_CASE("reload requests at the same time each get an answer", "[control][reload]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});
  std::vector<std::future<RunResult>> runs;
  for (int i = 0; i < 6; ++i) runs.push_back(std::async(std::launch::async, [&] { return c.ctl({"reload"}); }));
  d.signal(SIGHUP);
  for (auto& run : runs) {
    const auto result = run.get();
    CHECK(result.exit_code == 0);
    CHECK(contains(result.out, ": 2 listener(s) kept, 0 added, 0 removed\n"));
  }
  CHECK(ask_hello(d.port("hello")) == "Hello from server!\n");
}

TEST_CASE("porticoctl diff shows exactly the changed keys and changes nothing", "[control][diff]") {
  Controlled c;
  const std::string running = R"(
[[listener]]
name = "hello"
address = "127.0.0.1:0"

[[listener]]
name = "echo"
address = "127.0.0.1:0"
handler = "echo"

[[listener]]
name = "daytime"
address = "127.0.0.1:0"
handler = "daytime"
)";
  auto d = Daemon::start(c.config(running), {.listeners = 3});
  CHECK(c.ctl({"diff"}).out == "no changes: " + d.config_path() + " is what porticod runs\n");

  const std::string next = c.config(R"(
[[listener]]
name = "hello"
address = "127.0.0.1:0"

[[listener]]
name = "echo"
address = "127.0.0.1:0"
handler = "echo"
idle_timeout = "30s"
max_connections = 5
)",
                                    "log_level = \"debug\"\n");
  // A file of the operator's, named relative to porticoctl's directory.
  const std::string file = c.dir->write("next.toml", next);
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(c.dir->path());
  const auto diff = c.ctl({"diff", "-c", "next.toml"});
  std::filesystem::current_path(cwd);
  INFO(diff.out << diff.err);
  CHECK(diff.exit_code == 0);
  CHECK(diff.out == "- listener \"daytime\" 127.0.0.1:0 (daytime)\n"
                    "~ [daemon] log_level: \"info\" -> \"debug\"\n"
                    "~ listener \"echo\" max_connections: 0 -> 5\n"
                    "~ listener \"echo\" idle_timeout: \"0s\" -> \"30s\"\n");
  const auto json = c.ctl({"diff", "-c", file, "--json"});
  CHECK(jq(json.out, ".removed[0].name") == "daytime");
  CHECK(jq(json.out, ".changes | map(.key) | join(\",\")") == "log_level,max_connections,idle_timeout");
  CHECK(jq(json.out, ".changes[2] | [.scope, .before, .after] | join(\"|\")") == R"(listener "echo"|"0s"|"30s")");
  // Nothing changed: the daytime listener still serves.
  CHECK(jq(c.ctl({"status", "--json"}).out, ".listeners | length") == "3");
  Client daytime(d.port("daytime"));
  CHECK(contains(daytime.read_all(), "-UTC\r\n"));

  const std::string broken = c.dir->write("broken.toml", "[daemon]\nlog_level = \"loud\"\n");
  const auto bad = c.ctl({"diff", "-c", broken});
  CHECK(bad.exit_code == 78);
  CHECK(contains(bad.out, broken + ":2:13: "));
  CHECK(bad.err == "porticoctl: 2 error(s) in " + broken + "\n");
}

TEST_CASE("porticoctl disable queues new clients while open sessions go on, enable serves them", "[control]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});
  Client open(d.port("echo"));
  REQUIRE(open.send("before\n"));
  REQUIRE(open.read_exactly(7) == "before\n");

  const auto disabled = c.ctl({"disable", "echo"});
  CHECK(disabled.exit_code == 0);
  CHECK(disabled.out ==
        "listener \"echo\" disabled: new clients wait in its backlog; 1 open connection(s) go on\n");
  CHECK(d.wait_log("listener \"echo\" disabled by uid 0"));
  // The kernel completes the handshake; porticod does not take the client.
  Client waiting(d.port("echo"));
  REQUIRE(waiting.send("queued\n"));
  CHECK(waiting.read_all(500ms).empty());
  REQUIRE(open.send("during\n"));
  CHECK(open.read_exactly(7) == "during\n");
  CHECK(contains(squeeze(c.ctl({"status"}).out), " echo disabled 1 "));
  // The other listener is not affected.
  CHECK(ask_hello(d.port("hello")) == "Hello from server!\n");

  const auto enabled = c.ctl({"enable", "echo"});
  CHECK(enabled.exit_code == 0);
  CHECK(enabled.out == "listener \"echo\" enabled: accepting again\n");
  CHECK(waiting.read_exactly(7, 3s) == "queued\n");
  CHECK(contains(squeeze(c.ctl({"status"}).out), " echo serving 2 "));

  const auto unknown = c.ctl({"disable", "nosuch"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.err == "porticoctl: no listener named \"nosuch\"\n");
  CHECK(jq(c.ctl({"disable", "echo", "--json"}).out, "[.listener, .state, .open] | @csv") == "\"echo\",\"disabled\",2");
}

TEST_CASE("porticoctl drain waits for a session that ends in time and cuts one that does not", "[control]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});
  {
    Client session(d.port("echo"));
    REQUIRE(session.send("x\n"));
    REQUIRE(session.read_exactly(2) == "x\n");
    const auto began = Clock::now();
    auto drain = std::async(std::launch::async, [&] { return c.ctl({"drain", "echo", "--timeout", "10s"}); });
    CHECK(d.wait_log("listener \"echo\" draining for up to 10s"));
    CHECK(contains(squeeze(c.ctl({"status"}).out), " echo draining 1 "));
    // Still served while it drains.
    REQUIRE(session.send("y\n"));
    CHECK(session.read_exactly(2) == "y\n");
    session.shutdown_write();
    CHECK(session.wait_closed());
    const auto drained = drain.get();
    INFO(drained.out << drained.err);
    CHECK(drained.exit_code == 0);
    CHECK(std::regex_match(drained.out,
                           std::regex("listener \"echo\" drained: every connection ended within [0-9.]+(ms|s)\n"
                                      "it stays disabled; porticoctl enable echo serves again\n")));
    CHECK(Clock::now() - began < 8s);
    CHECK(contains(squeeze(c.ctl({"status"}).out), " echo disabled 0 "));
  }
  REQUIRE(c.ctl({"enable", "echo"}).exit_code == 0);
  {
    Client stubborn(d.port("echo"));
    REQUIRE(stubborn.send("x\n"));
    REQUIRE(stubborn.read_exactly(2) == "x\n");
    const auto drained = c.ctl({"drain", "echo", "--timeout", "1s", "--json"});
    CHECK(drained.exit_code == 0);
    CHECK(jq(drained.out, "[.listener, .cut, .interrupted] | @csv") == "\"echo\",1,false");
    CHECK(stubborn.wait_closed(3s));
  }
  REQUIRE(c.ctl({"enable", "echo"}).exit_code == 0);
  Client again(d.port("echo"));
  REQUIRE(again.send("z\n"));
  CHECK(again.read_exactly(2) == "z\n");
  const auto human = [&] {
    Client s(d.port("echo"));
    s.send("x\n");
    s.read_exactly(2);
    return c.ctl({"drain", "echo", "--timeout", "300ms"});
  }();
  CHECK(human.out.starts_with("listener \"echo\" drained: 2 connection(s) still open after 300ms were cut\n"));
  // An enable ends a drain in progress: nothing is cut.
  REQUIRE(c.ctl({"enable", "echo"}).exit_code == 0);
  Client kept(d.port("echo"));
  REQUIRE(kept.send("k\n"));
  REQUIRE(kept.read_exactly(2) == "k\n");
  auto long_drain = std::async(std::launch::async, [&] { return c.ctl({"drain", "echo", "--timeout", "20s"}); });
  REQUIRE(d.wait_log("listener \"echo\" draining for up to 20s"));
  REQUIRE(c.ctl({"enable", "echo"}).exit_code == 0);
  const auto ended = long_drain.get();
  CHECK(ended.exit_code == 0);
  CHECK(std::regex_match(ended.out, std::regex("listener \"echo\": the drain ended after [0-9.]+(ms|s) by enable or "
                                               "another drain; 1 connection\\(s\\) still open, none cut\n")));
  REQUIRE(kept.send("k\n"));
  CHECK(kept.read_exactly(2) == "k\n");
}

TEST_CASE("the control socket is 0660 in porticod's group, kept across reloads and removed on exit", "[control]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});
  struct stat before {};
  REQUIRE(lstat(c.socket.c_str(), &before) == 0);
  CHECK(S_ISSOCK(before.st_mode));
  CHECK((before.st_mode & 0777) == 0660);
  // porticod runs as nobody here (see Daemon::start), group nogroup.
  CHECK(before.st_gid == (getuid() == 0 ? 65534 : getegid()));
  d.rewrite_config(c.config(hello_and_echo, "log_level = \"debug\"\n"));
  REQUIRE(c.ctl({"reload"}).exit_code == 0);
  struct stat after {};
  REQUIRE(lstat(c.socket.c_str(), &after) == 0);
  CHECK(after.st_ino == before.st_ino);
  CHECK(d.wait_log("control socket on " + c.socket));
  d.signal(SIGTERM);
  REQUIRE(d.wait_exit() == 0);
  CHECK_FALSE(std::filesystem::exists(c.socket));
  const auto gone = c.ctl({"status"});
  CHECK(gone.exit_code == 69);
  CHECK(contains(gone.err, "porticoctl: cannot connect to " + c.socket + ": No such file or directory"));
}

TEST_CASE("porticoctl finds the socket in the config file, and says why when it cannot", "[control]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});
  const auto status = run_porticoctl({"-c", d.config_path(), "status"});
  CHECK(status.exit_code == 0);
  CHECK(status.out.starts_with("porticod 0.2.0"));

  TempDir dir;
  const std::string none = dir.write("none.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\n");
  const auto unset = run_porticoctl({"-c", none, "status"});
  CHECK(unset.exit_code == 69);
  CHECK(unset.err == "porticoctl: " + none + " sets no [daemon] control_socket, so porticod listens on none (set it "
                                             "and restart porticod, or give one with -s PATH)\n");
  const std::string bad = dir.write("bad.toml", "[daemon]\ncontrol_socket = \"x.sock\"\n");
  const auto wrong = run_porticoctl({"-c", bad, "status", "--json"});
  CHECK(wrong.exit_code == 78);
  CHECK(contains(wrong.err, bad + ":2:18: \"control_socket\" in [daemon] must be an absolute path, not \"x.sock\"\n"));
  CHECK(jq(wrong.out, ".code") == "78");
  const auto missing = run_porticoctl({"-c", (dir.path() / "absent.toml").string(), "status"});
  CHECK(missing.exit_code == 69);
  const auto usage = run_porticoctl({"frobnicate"});
  CHECK(usage.exit_code == 64);
  CHECK(usage.err == "porticoctl: unknown command \"frobnicate\"; try \"help\"\n"
                     "Try 'porticoctl --help' for more information.\n");
  CHECK(run_porticoctl({"--help"}).exit_code == 0);
  CHECK(run_porticoctl({"--version"}).out == "porticoctl 0.2.0\n");
  const auto help = c.ctl({"help"});
  CHECK(help.exit_code == 0);
  CHECK(contains(help.out, "drain LISTENER [--timeout 30s]"));
}

TEST_CASE("a control socket that cannot be made stops the start, saying why", "[control]") {
  TempDir dir;
  const std::string config = dir.write("p.toml", "[daemon]\ncontrol_socket = \"" + (dir.path() / "no/such/c.sock").string() +
                                                     "\"\n[[listener]]\naddress = \"127.0.0.1:0\"\n");
  const auto run = run_porticod({"-c", config});
  CHECK(run.exit_code == 1);
  CHECK(contains(run.err, "[daemon] control_socket \"" + (dir.path() / "no/such/c.sock").string() +
                              "\": cannot bind: No such file or directory; its directory must exist"));
  // Another porticod's live socket is not taken over.
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});
  const std::string second = dir.write("q.toml", c.config("[[listener]]\naddress = \"127.0.0.1:0\"\n"));
  const auto again = run_porticod({"-c", second});
  CHECK(again.exit_code == 1);
  CHECK(contains(again.err, "another process is listening on it (is porticod running already?)"));
  CHECK(c.ctl({"status"}).exit_code == 0);
}

TEST_CASE("an upgrade (SIGUSR2) hands the control socket to the new process", "[control][upgrade]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello_and_echo), {.listeners = 2});
  struct stat before {};
  REQUIRE(lstat(c.socket.c_str(), &before) == 0);
  d.signal(SIGUSR2);
  REQUIRE(d.wait_log("serves every listener now", 15s));
  const std::string log = d.log();
  std::smatch found;
  REQUIRE(std::regex_search(log, found, std::regex(R"(upgrade: this process \(pid (\d+)\) serves every listener now)")));
  const pid_t next = std::stoi(found[1]);
  // The old process exits without removing the new one's socket.
  CHECK(d.wait_exit(15s) == 0);
  struct stat after {};
  REQUIRE(lstat(c.socket.c_str(), &after) == 0);
  CHECK(after.st_ino != before.st_ino);
  const auto status = c.ctl({"status"});
  CHECK(status.exit_code == 0);
  CHECK(status.out.starts_with("porticod 0.2.0, pid " + std::to_string(next) + ", up "));
  ::kill(next, SIGTERM);
  CHECK(wait_gone(next, 15s));
  CHECK_FALSE(std::filesystem::exists(c.socket));
}
