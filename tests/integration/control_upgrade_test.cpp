// porticoctl upgrade against a real porticod: the answer once the outcome is
// known, with its exit code, and how an upgrade meets another upgrade or a
// reload.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include "integration/control_support.hpp"

using namespace portico::test;

namespace {

const std::string hello = "[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n";

std::string ask_hello(std::uint16_t port) {
  Client c(port);
  c.send("hi\n");
  return c.read_all(3s);
}

// The first number `pattern` captures in `text`, or -1.
pid_t captured_pid(const std::string& text, const std::string& pattern) {
  std::smatch m;
  return std::regex_search(text, m, std::regex(pattern)) ? std::stoi(m[1]) : -1;
}

// The pid of the newest process that logged it serves after an upgrade.
pid_t newest_upgraded(const std::string& log) {
  static const std::regex line(R"(upgrade: this process \(pid (\d+)\) serves every listener now)");
  pid_t pid = -1;
  for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) pid = std::stoi((*it)[1]);
  return pid;
}

// A FIFO to name as a plugin: a porticod that loads it waits in open(2)
// until the test opens the writing end.
struct HeldPlugin {
  TempDir dir;
  std::string path = (dir.path() / "held.so").string();
  HeldPlugin() {
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    REQUIRE(::chmod(path.c_str(), 0666) == 0);  // porticod serves as nobody
  }
  // Opens the writing end once the reader waits (a non-blocking open for
  // writing fails with ENXIO until then): the reader goes on, and reads an
  // empty file once this is closed.
  int open_writer() const {
    int writer = -1;
    for (int i = 0; i < 1000 && writer < 0; ++i) {
      writer = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (writer < 0) std::this_thread::sleep_for(10ms);
    }
    REQUIRE(writer >= 0);
    return writer;
  }
  std::string daemon_keys() const { return "plugins = [\"" + path + "\"]\n"; }
};

// Starts a porticoctl reload that waits in the plugin's open(2), having
// read the file, and a porticoctl upgrade that waits for that reload.
std::pair<std::future<RunResult>, std::future<RunResult>> reload_with_upgrade_waiting(Controlled& c, Daemon& d,
                                                                                     const HeldPlugin& held) {
  d.rewrite_config(c.config(hello, held.daemon_keys()));
  auto reload = std::async(std::launch::async, [&c] { return c.ctl({"reload"}, 40s); });
  REQUIRE(d.wait_log("porticoctl reload by uid 0 (pid "));
  auto up = std::async(std::launch::async, [&c] { return c.ctl({"upgrade"}, 40s); });
  REQUIRE(d.wait_log("): a reload is in progress: upgrading once it is applied"));
  return {std::move(reload), std::move(up)};
}

}  // namespace

TEST_CASE("porticoctl upgrade answers once the new process serves; the old one drains and exits",
          "[control][upgrade]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello, "shutdown_timeout = \"5s\""));
  // A session the old process serves to its end.
  Client session(d.port());
  const auto open_connections = [&c] { return jq(c.ctl({"status", "--json"}).out, ".connections"); };
  for (int i = 0; i < 500 && open_connections() != "1"; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(open_connections() == "1");

  const auto up = c.ctl({"upgrade"});
  INFO(up.out << up.err << d.log());
  const pid_t next = newest_upgraded(d.log());
  REQUIRE(next > 0);
  CHECK(up.exit_code == 0);
  CHECK(up.err.empty());
  CHECK(up.out == "upgraded: the new process (pid " + std::to_string(next) +
                      ") serves every listener; the old one (pid " + std::to_string(d.pid()) +
                      ") drains its 1 connection(s) for up to 5s and exits\n");
  CHECK(d.wait_log("porticoctl upgrade by uid 0 (pid "));
  CHECK(d.wait_log("): upgrading: started "));
  // The session is the old process's to finish; then it exits.
  REQUIRE(session.send("hi\n"));
  CHECK(session.read_all(3s) == "Hello from server!\n");
  CHECK(d.wait_exit(15s) == 0);
  UNSCOPED_INFO(d.log());
  // The control socket is the new process's now.
  const auto status = c.ctl({"status"});
  CHECK(status.exit_code == 0);
  CHECK(status.out.starts_with("porticod 0.2.0, pid " + std::to_string(next) + ", up "));
  CHECK(ask_hello(d.port()) == "Hello from server!\n");

  // And again from the new one, in JSON.
  const auto json = c.ctl({"upgrade", "--json", "--timeout", "20s"});
  INFO(json.out << json.err);
  CHECK(json.exit_code == 0);
  const pid_t third = newest_upgraded(d.log());
  CHECK(third != next);
  CHECK(jq(json.out, "[.new_pid, .old_pid, .connections, .shutdown_timeout] | @csv") ==
        std::to_string(third) + "," + std::to_string(next) + ",0,\"5s\"");
  CHECK(wait_gone(next, 15s));
  CHECK(c.ctl({"status"}).out.starts_with("porticod 0.2.0, pid " + std::to_string(third) + ", up "));
  ::kill(third, SIGTERM);
  CHECK(wait_gone(third, 15s));
}

TEST_CASE("a porticoctl upgrade whose new process finds config errors fails with exit 78; the old one serves",
          "[control][upgrade]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello));
  // The new process reads the configuration again: now broken.
  d.rewrite_config(c.config(hello + "no_such_key = 1\n"));
  const auto failed = c.ctl({"upgrade"});
  INFO(failed.out << failed.err);
  CHECK(failed.exit_code == 78);
  CHECK(failed.out.empty());
  const pid_t tried = captured_pid(failed.err, R"(^porticoctl: upgrade failed: the new process \(pid (\d+)\) )");
  REQUIRE(tried > 0);
  const std::string why = "upgrade failed: the new process (pid " + std::to_string(tried) +
                          ") exited with status 78 before it was ready; still serving";
  CHECK(failed.err == "porticoctl: " + why + "\n");
  CHECK(d.wait_log(why));
  CHECK(ask_hello(d.port()) == "Hello from server!\n");
  CHECK(c.ctl({"status"}).out.starts_with("porticod 0.2.0, pid " + std::to_string(d.pid()) + ", up "));

  const auto json = c.ctl({"upgrade", "--json"});
  CHECK(json.exit_code == 78);
  CHECK(jq(json.out, ".code") == "78");
  CHECK(jq(json.out, ".error | test(\"^upgrade failed: the new process \\\\(pid [0-9]+\\\\) exited with status 78 "
                     "before it was ready; still serving$\")") == "true");
  CHECK(d.running());
}

TEST_CASE("during an upgrade another upgrade and a reload are refused with exit 75; one not ready in time fails",
          "[control][upgrade]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello));
  // The new process reads the configuration again, and now it names a
  // plugin that is a FIFO: it waits in open(2), the upgrade surely in
  // progress, until the test opens the other end.
  HeldPlugin held;
  d.rewrite_config(c.config(hello, held.daemon_keys()));
  auto first = std::async(std::launch::async, [&c] { return c.ctl({"upgrade", "--timeout", "20s"}, 40s); });
  REQUIRE(d.wait_log("): upgrading: started ", 10s));
  const pid_t pending = captured_pid(d.log(), R"(upgrading: started \S+ as pid (\d+))");
  REQUIRE(pending > 0);
  const std::string in_progress = "(new process " + std::to_string(pending) + ")";

  const auto second = c.ctl({"upgrade"});
  CHECK(second.exit_code == 75);
  CHECK(second.out.empty());
  CHECK(second.err == "porticoctl: an upgrade is in progress already " + in_progress + ": this one is refused\n");
  const auto second_json = c.ctl({"upgrade", "--json"});
  CHECK(second_json.exit_code == 75);
  CHECK(jq(second_json.out, ".code") == "75");
  d.signal(SIGUSR2);
  CHECK(d.wait_log("SIGUSR2: an upgrade is in progress already " + in_progress + ": this one is refused"));

  const auto reload = c.ctl({"reload"});
  CHECK(reload.exit_code == 75);
  CHECK(reload.err == "porticoctl: an upgrade is in progress " + in_progress +
                          ": no reload; the new process loads the configuration as it starts (reload again if the "
                          "upgrade fails)\n");
  d.signal(SIGHUP);
  CHECK(d.wait_log("received SIGHUP: an upgrade is in progress " + in_progress + ": no reload"));
  CHECK(ask_hello(d.port()) == "Hello from server!\n");
  // status says so.
  const auto status = c.ctl({"status"});
  CHECK(status.out.starts_with("porticod 0.2.0, pid " + std::to_string(d.pid()) + ", up "));
  CHECK(contains(status.out.substr(0, status.out.find('\n')), ", upgrading " + in_progress));
  CHECK(jq(c.ctl({"status", "--json"}).out, ".upgrade | [.state, .new_pid] | @csv") ==
        "\"starting\"," + std::to_string(pending));

  // Let the new process go on: its plugin is empty, so it fails.
  ::close(held.open_writer());
  const auto failed = first.get();
  CHECK(failed.exit_code == 78);
  CHECK(failed.err == "porticoctl: upgrade failed: the new process (pid " + std::to_string(pending) +
                          ") exited with status 78 before it was ready; still serving\n");

  // Not ready within --timeout: killed, and the old one serves on.
  const std::size_t from = d.log().size();
  const auto late = c.ctl({"upgrade", "--timeout", "1s"});
  const pid_t killed = captured_pid(d.log().substr(from), R"(upgrading: started \S+ as pid (\d+))");
  CHECK(late.exit_code == 1);
  CHECK(late.err == "porticoctl: upgrade failed: the new process (pid " + std::to_string(killed) +
                        ") was not ready within 1s (killed); still serving\n");
  CHECK(ask_hello(d.port()) == "Hello from server!\n");
  const auto after = c.ctl({"status"});
  CHECK(after.out.starts_with("porticod 0.2.0, pid " + std::to_string(d.pid()) + ", up "));
  CHECK_FALSE(contains(after.out, "upgrading"));
  CHECK(jq(c.ctl({"status", "--json"}).out, ".upgrade | [.state, .new_pid] | @csv") == "\"none\",0");
  CHECK(d.running());
}

TEST_CASE("an upgrade asked during a reload starts once the reload is applied", "[control][upgrade][reload]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello));
  HeldPlugin held;
  auto [reload, up] = reload_with_upgrade_waiting(c, d, held);
  const auto second = c.ctl({"upgrade"});
  CHECK(second.exit_code == 75);
  CHECK(second.err ==
        "porticoctl: an upgrade is in progress already (waiting for a reload): this one is refused\n");
  const auto status = c.ctl({"status"});
  CHECK(status.out.substr(0, status.out.find('\n')).ends_with(", upgrading (waiting for the reload to be applied)"));
  CHECK(jq(c.ctl({"status", "--json"}).out, ".upgrade | [.state, .new_pid] | @csv") == "\"waiting_for_reload\",0");

  // The file the new process will read; the reload read the old one.
  const int writer = held.open_writer();
  d.rewrite_config(c.config(hello));
  ::close(writer);
  const auto reloaded = reload.get();
  CHECK(reloaded.exit_code == 78);
  const auto upgraded = up.get();
  INFO(upgraded.out << upgraded.err << d.log());
  CHECK(upgraded.exit_code == 0);
  const pid_t next = newest_upgraded(d.log());
  CHECK(upgraded.out.starts_with("upgraded: the new process (pid " + std::to_string(next) + ") serves every listener"));
  // The reload was over before the new process started.
  const std::string log = d.log();
  CHECK(log.find("reload failed:") < log.find("): upgrading: started "));
  CHECK(d.wait_exit(15s) == 0);
  CHECK(ask_hello(d.port()) == "Hello from server!\n");
  ::kill(next, SIGTERM);
  CHECK(wait_gone(next, 15s));
}

// A stop answers what waits for a reload at once: the file being read may
// not come back before the process exits (here a plugin whose open(2)
// waits), and porticoctl would otherwise see only the socket close.
TEST_CASE("a stop during a reload answers the reload and the upgrade waiting for it", "[control][upgrade][reload]") {
  Controlled c;
  auto d = Daemon::start(c.config(hello));
  HeldPlugin held;
  auto [reload, up] = reload_with_upgrade_waiting(c, d, held);

  d.signal(SIGTERM);
  const auto reloaded = reload.get();
  CHECK(reloaded.exit_code == 1);
  CHECK(reloaded.err == "porticoctl: porticod is stopping: no reload\n");
  const auto upgraded = up.get();
  CHECK(upgraded.exit_code == 1);
  CHECK(upgraded.err == "porticoctl: porticod is stopping: no upgrade\n");
  CHECK(d.wait_log("): porticod is stopping: no upgrade"));

  // The process exits once the reading thread is back, and says so.
  CHECK(d.wait_log("exiting once the configuration being read for a reload is read (a plugin still loading?)"));
  CHECK(d.running());
  ::close(held.open_writer());
  CHECK(d.wait_exit(15s) == 0);
  CHECK(d.log().find("): upgrading: started ") == std::string::npos);
}
