// Listener limits and timeouts against the real porticod: each refusal is
// shown, and allowed clients still get through.

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;

namespace {

// The limits count the connections porticod holds: silent clients are taken
// at once here, not after the kernel's deferral (defer_accept).
std::string listener(const std::string& extra, const std::string& handler_options = "read_timeout = \"30s\"\n") {
  return "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\ndefer_accept = \"0s\"\n" + extra + "\n" +
         handler_options;
}

// True when the server accepted and then closed without answering.
bool refused(Client& c) {
  c.send("hi\n");
  bool closed = false;
  const std::string reply = c.read_all(3s, &closed);
  return closed && reply.empty();
}

bool served(std::uint16_t port, const std::string& host = "127.0.0.1", const std::string& source = "") {
  Client c(port, host, 5s, source);
  c.send("hi\n");
  return c.read_all(3s) == "Hello from server!\n";
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("idle_timeout closes 500 silent connections while a normal client is served promptly", "[limits]") {
  auto d = Daemon::start(listener("idle_timeout = \"1s\""));
  std::vector<Client> silent;
  silent.reserve(500);
  for (int i = 0; i < 500; ++i) silent.emplace_back(d.port());
  const auto opened = Clock::now();

  const auto started = Clock::now();
  CHECK(served(d.port()));
  CHECK(Clock::now() - started < 500ms);

  for (auto& c : silent) CHECK(c.wait_closed(3s));
  CHECK(Clock::now() - opened < 2500ms);
  CHECK(d.wait_log("closed: timed out (idle_timeout 1s)"));
}

TEST_CASE("a burst of idle_timeout closes logs one line, then how many more there were", "[limits][log]") {
  auto d = Daemon::start(listener("idle_timeout = \"300ms\""));
  std::vector<Client> silent;
  for (int i = 0; i < 20; ++i) silent.emplace_back(d.port());
  for (auto& c : silent) CHECK(c.wait_closed(3s));
  // One line a second per listener; the other 19 are counted once the
  // second after the line is over, though no later close reports them.
  CHECK(d.wait_log("[l] ... and 19 more like the last line since it was logged", 3s));
  const std::string log = d.log();
  CHECK(count(log, "closed: timed out (idle_timeout 300ms)") == 1);
  CHECK(count(log, "more like the last line") == 1);
}

TEST_CASE("a burst of refusals logs one line, then how many more there were", "[limits][log]") {
  auto d = Daemon::start(listener("rate = 1\nburst = 1"));
  // The first takes the one token; the next ten, within the same second,
  // are refused.
  std::vector<Client> clients;
  for (int i = 0; i < 11; ++i) clients.emplace_back(d.port());
  for (std::size_t i = 1; i < clients.size(); ++i) CHECK(clients[i].wait_closed(3s));
  // Refusals are logged once per 5s, and what was held back when the 5s end.
  CHECK(d.wait_log("listener \"l\": ... and 9 more refused since the last report", 7s));
  const std::string log = d.log();
  CHECK(count(log, "rate (1/s) exceeded") == 1);
  CHECK(count(log, "more refused since the last report") == 1);
}

TEST_CASE("session_timeout ends a connection however busy it is", "[limits]") {
  auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\nsession_timeout = \"500ms\"\n");
  Client c(d.port());
  const auto started = Clock::now();
  bool closed = false;
  while (!closed && Clock::now() - started < 3s) {
    c.send("x");
    c.read_all(50ms, &closed);
  }
  CHECK(closed);
  CHECK(Clock::now() - started >= 450ms);
  CHECK(d.wait_log("closed: timed out (session_timeout 500ms)"));
}

TEST_CASE("max_connections pauses accepting and resumes when a connection ends", "[limits]") {
  auto d = Daemon::start(listener("max_connections = 2"));
  auto a = std::make_unique<Client>(d.port());
  Client b(d.port());
  REQUIRE(d.wait_log("max_connections (2) reached; pausing accepts"));
  // The third waits in the backlog: connected by the kernel, not served.
  Client third(d.port());
  third.send("hi\n");
  CHECK(third.read_all(300ms).empty());
  // One ends: the third is accepted and served.
  a->send("bye\n");
  CHECK(a->read_all(2s) == "Hello from server!\n");
  a.reset();
  CHECK(third.read_all(3s) == "Hello from server!\n");
}

TEST_CASE("max_connections with on_limit = reject closes the excess at once", "[limits]") {
  auto d = Daemon::start(listener("max_connections = 1\non_limit = \"reject\""));
  Client held(d.port());
  usleep(100'000);
  Client excess(d.port());
  CHECK(refused(excess));
  CHECK(d.wait_log("refused 127.0.0.1:"));
  CHECK(d.wait_log(": max_connections reached"));
  held.send("x\n");
  CHECK(held.read_all(2s) == "Hello from server!\n");
  CHECK(served(d.port()));
}

TEST_CASE("[daemon] max_connections caps connections across listeners", "[limits]") {
  auto d = Daemon::start(
      "[daemon]\nmax_connections = 1\n"
      "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:0\"\ndefer_accept = \"0s\"\nread_timeout = \"30s\"\n"
      "[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:0\"\non_limit = \"reject\"\n",
      {.listeners = 2});
  auto held = std::make_unique<Client>(d.port("a"));
  usleep(100'000);
  Client other(d.port("b"));
  CHECK(refused(other));
  held.reset();
  usleep(100'000);
  CHECK(served(d.port("b")));
}

TEST_CASE("max_per_source caps concurrent connections per client address", "[limits]") {
  auto d = Daemon::start(listener("max_per_source = 2"));
  Client a(d.port());
  Client b(d.port());
  usleep(100'000);
  Client c(d.port());
  CHECK(refused(c));
  CHECK(d.wait_log("max_per_source (2) reached for its address"));
  // Another loopback address is another source.
  CHECK(served(d.port(), "127.0.0.1", "127.0.0.2"));
  a.send("x\n");
  CHECK(a.read_all(2s) == "Hello from server!\n");
}

TEST_CASE("a listener whose clients speak first takes a silent client after a second (defer_accept)", "[limits]") {
  auto d = Daemon::start(
      "[[listener]]\nname = \"deferred\"\naddress = \"127.0.0.1:0\"\nread_timeout = \"300ms\"\n"
      "[[listener]]\nname = \"at-once\"\naddress = \"127.0.0.1:0\"\ndefer_accept = \"0s\"\nread_timeout = \"300ms\"\n",
      {.listeners = 2});
  // A client that speaks is served at once either way.
  const auto asked = Clock::now();
  CHECK(served(d.port("deferred")));
  CHECK(Clock::now() - asked < 500ms);
  // A silent one waits out read_timeout from when porticod took it: at once,
  // or once the kernel's deferral (1s by default) ended.
  Client deferred(d.port("deferred"));
  Client at_once(d.port("at-once"));
  const auto opened = Clock::now();
  REQUIRE(at_once.wait_closed(3s));
  CHECK(Clock::now() - opened < 900ms);
  REQUIRE(deferred.wait_closed(4s));
  CHECK(Clock::now() - opened >= 1200ms);
  CHECK(d.wait_log("timed out: nothing received within 300ms"));
}

TEST_CASE("a client held back by defer_accept takes no max_connections slot until porticod takes it", "[limits]") {
  auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\ndefer_accept = \"1s\"\nmax_connections = 1\n"
                         "on_limit = \"reject\"\nread_timeout = \"30s\"\n");
  Client silent(d.port());
  usleep(200'000);
  // The silent client is still the kernel's: another is served.
  CHECK(served(d.port()));
  // After the deferral porticod has it, and it holds the one slot.
  usleep(1'500'000);
  Client excess(d.port());
  CHECK(refused(excess));
  CHECK(d.wait_log(": max_connections reached"));
  silent.send("x\n");
  CHECK(silent.read_all(2s) == "Hello from server!\n");
}

TEST_CASE("a banner listener takes its clients at once (defer_accept auto is off)", "[limits]") {
  auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\nmode = \"on-connect\"\n");
  const auto opened = Clock::now();
  Client c(d.port());
  CHECK(c.read_all(3s) == "Hello from server!\n");
  CHECK(Clock::now() - opened < 500ms);
}

TEST_CASE("rate limits new connections with a burst", "[limits]") {
  auto d = Daemon::start(listener("rate = 1\nburst = 3"));
  int ok = 0;
  int turned_away = 0;
  for (int i = 0; i < 6; ++i) {
    if (served(d.port())) {
      ++ok;
    } else {
      ++turned_away;
    }
  }
  CHECK(ok == 3);
  CHECK(turned_away == 3);
  CHECK(d.wait_log("rate (1/s) exceeded"));
  // Tokens come back at the configured rate.
  std::this_thread::sleep_for(1100ms);
  CHECK(served(d.port()));
}

TEST_CASE("allow and deny for IPv4: deny wins, allow refuses the rest", "[limits][access]") {
  auto d = Daemon::start(listener("allow = [\"127.0.0.0/8\"]\ndeny = [\"127.0.0.3\"]"));
  CHECK(served(d.port(), "127.0.0.1"));
  Client denied(d.port(), "127.0.0.1", 5s, "127.0.0.3");
  CHECK(refused(denied));
  CHECK(d.wait_log("refused 127.0.0.3:"));
  CHECK(d.wait_log("denied by 127.0.0.3"));

  auto only = Daemon::start(listener("allow = [\"127.0.0.2/32\"]"));
  CHECK(served(only.port(), "127.0.0.1", "127.0.0.2"));
  Client outside(only.port(), "127.0.0.1");
  CHECK(refused(outside));
  CHECK(only.wait_log("not in the allow list"));
}

TEST_CASE("allow and deny for IPv6", "[limits][access]") {
  if (try_connect(1, "::1") < 0 && errno == EADDRNOTAVAIL) {
    WARN("no IPv6 loopback on this machine");
    return;
  }
  auto d = Daemon::start("[[listener]]\naddress = \"[::1]:0\"\ndeny = [\"::1/128\"]\n");
  Client c(d.port(), "::1");
  CHECK(refused(c));
  CHECK(d.wait_log("refused [::1]:"));
  auto ok = Daemon::start("[[listener]]\naddress = \"[::1]:0\"\nallow = [\"::/0\"]\ndeny = [\"2001:db8::/32\"]\n");
  CHECK(served(ok.port(), "::1"));
}

TEST_CASE("IPv4-mapped IPv6 clients match IPv4 rules", "[limits][access]") {
  auto d = Daemon::start(
      "[[listener]]\naddress = \"[::]:0\"\nv6only = false\nallow = [\"127.0.0.1/32\"]\n");
  // A dual-stack socket sees 127.0.0.1 as ::ffff:127.0.0.1.
  CHECK(served(d.port(), "127.0.0.1"));
  Client other(d.port(), "127.0.0.1", 5s, "127.0.0.2");
  CHECK(refused(other));
  auto deny = Daemon::start("[[listener]]\naddress = \"[::]:0\"\nv6only = false\ndeny = [\"::ffff:127.0.0.0/104\"]\n");
  Client mapped(deny.port(), "127.0.0.1");
  CHECK(refused(mapped));
}

TEST_CASE("a Unix socket listener serves, replaces a stale socket file, applies socket_mode and cleans up",
          "[limits][unix]") {
  TempDir dir;
  const std::string path = (dir.path() / "g.sock").string();
  {
    // A stale file: a socket nobody listens on any more.
    auto stale = Daemon::start("[[listener]]\naddress = \"unix:" + path + "\"\n");
    stale.signal(SIGKILL);
    stale.wait_exit();
  }
  REQUIRE(std::filesystem::exists(path));
  auto d = Daemon::start("[[listener]]\nname = \"u\"\naddress = \"unix:" + path + "\"\nsocket_mode = \"0600\"\n");
  CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  auto c = Client::unix_socket(path);
  c.send("hi\n");
  CHECK(c.read_all(2s) == "Hello from server!\n");
  // A second daemon must not steal a socket that is alive.
  const auto clash = run_porticod({"-c", d.config_path()});
  CHECK(clash.exit_code == 1);
  CHECK_THAT(clash.err, Contains("another process is listening on it"));
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK_FALSE(std::filesystem::exists(path));
}

namespace {
void limit_descriptors() {
  rlimit limit{64, 64};
  setrlimit(RLIMIT_NOFILE, &limit);
}
}  // namespace

TEST_CASE("out of file descriptors: no spinning, a rate-limited warning, service resumes", "[limits][emfile]") {
  auto d = Daemon::start(listener("idle_timeout = \"2s\""), {.before_exec = limit_descriptors});
  std::vector<Client> hogs;
  for (int i = 0; i < 80; ++i) hogs.emplace_back(d.port());
  REQUIRE(d.wait_log("accept failed: Too many open files"));
  const Millis before = cpu_time(d.pid());
  std::this_thread::sleep_for(1s);
  // Backing off costs a few wake-ups a second, not a core.
  CHECK(cpu_time(d.pid()) - before < 200ms);
  hogs.clear();
  std::this_thread::sleep_for(300ms);
  CHECK(served(d.port()));
  const std::string log = d.log();
  std::size_t warnings = 0;
  for (auto at = log.find("accept failed"); at != std::string::npos; at = log.find("accept failed", at + 1)) ++warnings;
  CHECK(warnings <= 3);
}
