// porticoctl probe, who may use the control socket, and what a hostile or
// broken client can do to it: a clear error or a close, never a stuck or
// fallen daemon.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <thread>

#include "integration/control_support.hpp"
#include "support/certs.hpp"

using namespace portico::test;

namespace {

// A listening socket of the test's own, standing for a proxy's upstream.
struct Upstream {
  // Close-on-exec: porticod, started after it, must not hold it open.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  std::uint16_t port = 0;
  Upstream() {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(listen(fd, 16) == 0);
    socklen_t length = sizeof address;
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(address.sin_port);
  }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  ~Upstream() { close(); }
};

// A blocking connection to a Unix socket, reads bounded by `timeout`.
int unix_connect(const std::string& path, Millis timeout = 5s) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

// Reads one answer (up to its empty line), or what came until EOF or
// `timeout`; `closed` tells whether the daemon closed the connection.
std::string read_answer(int fd, Millis timeout = 5s, bool* closed = nullptr) {
  std::string data;
  const auto deadline = Clock::now() + timeout;
  if (closed) *closed = false;
  while (data.find("\n\n") == std::string::npos && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const int left = static_cast<int>(std::chrono::duration_cast<Millis>(deadline - Clock::now()).count());
    if (poll(&p, 1, std::max(left, 0)) <= 0) break;
    // Peek first and take no more than this answer: the next one may have
    // come in the same segment.
    char chunk[4096];
    const ssize_t n = recv(fd, chunk, sizeof chunk, MSG_PEEK);
    if (n <= 0) {
      if (closed) *closed = true;
      break;
    }
    std::size_t take = static_cast<std::size_t>(n);
    const std::string seen = data + std::string(chunk, take);
    if (const auto end = seen.find("\n\n"); end != std::string::npos) take = end + 2 - data.size();
    const ssize_t got = recv(fd, chunk, take, 0);
    if (got <= 0) break;
    data.append(chunk, static_cast<std::size_t>(got));
  }
  return data;
}

bool send_text(int fd, const std::string& text) {
  return send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

bool wait_eof(int fd, Millis timeout) {
  bool closed = false;
  read_answer(fd, timeout, &closed);
  return closed;
}

const std::string greeting = "[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n";

}  // namespace

TEST_CASE("porticoctl probe passes on a healthy config and names the listeners that fail", "[control][probe]") {
  Controlled c;
  const auto& dir = *c.dir;
  // An exec program that the probe checks without running, and a TLS
  // certificate (porticod runs as nobody: both readable by all).
  const std::string program = dir.write("program.sh", "#!/bin/sh\necho hi\n");
  chmod(program.c_str(), 0755);
  const auto made = make_certificate(dir, "server", {});
  const std::string& cert = made.cert;
  const std::string& key = made.key;
  chmod(key.c_str(), 0644);
  Upstream upstream;
  const std::string listeners = greeting + R"(
[[listener]]
name = "echo"
address = "127.0.0.1:0"
handler = "echo"

[[listener]]
name = "daytime"
address = "127.0.0.1:0"
handler = "daytime"

[[listener]]
name = "time"
address = "127.0.0.1:0"
handler = "time"

[[listener]]
name = "chargen"
address = "127.0.0.1:0"
handler = "chargen"

[[listener]]
name = "discard"
address = "127.0.0.1:0"
handler = "discard"

[[listener]]
name = "banner"
address = "unix:)" + (dir.path() / "banner.sock").string() + R"("
mode = "on-connect"
message = "ready\n"

[[listener]]
name = "behind-proxy"
address = "127.0.0.1:0"
handler = "echo"
proxy_protocol = true

[[listener]]
name = "tls"
address = "127.0.0.1:0"
handler = "echo"
tls_certificate = ")" + cert + R"("
tls_key = ")" + key + R"("
tls_alpn = ["x-probe"]

[[listener]]
name = "px"
address = "127.0.0.1:0"
handler = "proxy"
upstream = ["127.0.0.1:)" + std::to_string(upstream.port) + R"("]

[[listener]]
name = "ex"
address = "127.0.0.1:0"
handler = "exec"
command = [")" + program + R"("]
)";
  auto d = Daemon::start(c.config(listeners), {.listeners = 11});
  const auto healthy = c.ctl({"probe"});
  INFO(healthy.out << healthy.err);
  CHECK(healthy.exit_code == 0);
  CHECK(healthy.err.empty());
  const std::string out = squeeze(healthy.out);
  const auto port = [&](const std::string& name) { return "127.0.0.1:" + std::to_string(d.port(name)); };
  CHECK(contains(out, "ok hello " + port("hello") + " greeting answered \"Hello from server!\\n\"\n"));
  CHECK(contains(out, "ok echo " + port("echo") + " echo sent back "));
  CHECK(contains(out, "ok daytime " + port("daytime") + " daytime answered \""));
  CHECK(contains(out, "ok time " + port("time") + " time answered "));
  CHECK(contains(out, "ok chargen " + port("chargen") + " chargen sent the first line of the RFC 864 pattern\n"));
  CHECK(contains(out, "ok discard " + port("discard") + " discard took 14 bytes and closed without answering\n"));
  CHECK(contains(out, "ok banner unix:" + (dir.path() / "banner.sock").string() + " greeting answered \"ready\\n\"\n"));
  CHECK(contains(out, "ok behind-proxy " + port("behind-proxy") + " echo sent back "));
  CHECK(contains(out, "ok tls " + port("tls") + " echo sent back "));
  CHECK(contains(out, "ok px " + port("px") + " proxy 1 upstream(s) reachable (connected, nothing relayed)\n"));
  CHECK(contains(out, "ok ex " + port("ex") + " exec program \"" + program + "\" is executable (not run)\n"));
  CHECK(jq(c.ctl({"probe", "--json"}).out, "[.ok, (.listeners | map(.result) | unique | join(\",\"))] | @csv") ==
        "true,\"ok\"");

  // The upstream goes away, and so does the program.
  upstream.close();
  std::filesystem::remove(program);
  const auto broken = c.ctl({"probe"});
  CHECK(broken.exit_code == 1);
  CHECK(broken.err == "porticoctl: probe failed: 2 of 11 listener(s): \"px\", \"ex\"\n");
  CHECK(contains(squeeze(broken.out), "FAILED px " + port("px") + " proxy 0 of 1 upstream(s) reachable; 127.0.0.1:" +
                                          std::to_string(upstream.port) + " unreachable: Connection refused\n"));
  CHECK(contains(squeeze(broken.out), "FAILED ex " + port("ex") + " exec command \"" + program +
                                          "\" cannot be run: No such file or directory\n"));
  CHECK(contains(squeeze(broken.out), "ok hello "));
  CHECK(jq(c.ctl({"probe", "ex", "--json"}).out, "[.ok, .listeners[0].name, .listeners[0].result] | @csv") ==
        "false,\"ex\",\"failed\"");
  // One listener alone; a disabled one is not probed, and does not fail.
  const auto one = c.ctl({"probe", "hello"});
  CHECK(one.exit_code == 0);
  CHECK(squeeze(one.out) == "ok hello " + port("hello") + " greeting answered \"Hello from server!\\n\"\n");
  REQUIRE(c.ctl({"disable", "echo"}).exit_code == 0);
  const auto disabled = c.ctl({"probe", "echo"});
  CHECK(disabled.exit_code == 0);
  CHECK(squeeze(disabled.out) == "- echo " + port("echo") + " echo not probed: the listener is disabled\n");
  CHECK(c.ctl({"probe", "nosuch"}).exit_code == 1);
}

TEST_CASE("a probe fails when the listener does not answer as its handler should", "[control][probe]") {
  Controlled c;
  // An echo that takes one client at a time, and has one: the probe waits
  // in the backlog.
  auto d = Daemon::start(c.config(
      "[[listener]]\nname = \"echo\"\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\nmax_connections = 1\n"));
  Client hog(d.port());
  REQUIRE(hog.send("x\n"));
  REQUIRE(hog.read_exactly(2) == "x\n");
  const auto result = c.ctl({"probe"});
  CHECK(result.exit_code == 1);
  CHECK(std::regex_match(result.out, std::regex("FAILED  echo  127\\.0\\.0\\.1:[0-9]+  echo  sent \"portico probe "
                                                "[0-9]+\\\\n\": no full answer in time: 0 of [0-9]+ bytes \\(nothing\\)\n")));
  CHECK(result.err == "porticoctl: probe failed: 1 of 1 listener(s): \"echo\"\n");
}

TEST_CASE("only root and the socket's group may use the control socket", "[control][privileges]") {
  if (getuid() != 0) {
    WARN("not root: cannot run porticoctl as another user");
    return;
  }
  Controlled c;
  auto d = Daemon::start(c.config(greeting));
  const Identity stranger{12345, 12345, {12345}};
  // The socket's mode stops a stranger first...
  const auto blocked = c.ctl({"status"}, 20s, stranger);
  CHECK(blocked.exit_code == 77);
  CHECK(blocked.err == "porticoctl: cannot connect to " + c.socket +
                           ": Permission denied (root and the members of the socket's group may)\n");
  // ...and porticod checks who connected whatever the mode says.
  REQUIRE(chmod(c.socket.c_str(), 0666) == 0);
  const auto refused = c.ctl({"status"}, 20s, stranger);
  CHECK(refused.exit_code == 77);
  CHECK(refused.out.empty());
  CHECK(refused.err == "porticoctl: permission denied: uid 12345 is neither root nor in group nogroup (65534)\n");
  CHECK(d.wait_log("control socket: refused uid 12345 gid 12345 (pid "));
  CHECK(d.wait_log(": neither root nor in group nogroup (65534)"));
  const auto json = c.ctl({"status", "--json"}, 20s, stranger);
  CHECK(json.exit_code == 77);
  CHECK(jq(json.out, ".code") == "77");
  // A member by a supplementary group is let in.
  REQUIRE(chmod(c.socket.c_str(), 0660) == 0);
  const auto member = c.ctl({"status"}, 20s, Identity{12345, 12345, {12345, 65534}});
  CHECK(member.exit_code == 0);
  CHECK(member.out.starts_with("porticod 0.2.0"));
  // By its primary group too.
  CHECK(c.ctl({"status"}, 20s, Identity{12345, 65534, {65534}}).exit_code == 0);
}

TEST_CASE("the control socket answers an unknown command and goes on, in any form", "[control][hostile]") {
  Controlled c;
  auto d = Daemon::start(c.config(greeting));
  const int fd = unix_connect(c.socket);
  REQUIRE(send_text(fd, "frobnicate now\n"));
  CHECK(read_answer(fd) == "ERR 64 unknown command \"frobnicate\"; try \"help\"\n\n");
  REQUIRE(send_text(fd, "status extra\r\n"));
  CHECK(read_answer(fd) == "ERR 64 status takes 0 arguments: status\n\n");
  REQUIRE(send_text(fd, "\x1b[2J\x07\n"));
  CHECK(read_answer(fd) == "ERR 64 unknown command \"\\x1b[2J\\x07\"; try \"help\"\n\n");
  // Two requests in one write, then one without its newline before EOF.
  REQUIRE(send_text(fd, "help\nhelp --json\nstatus"));
  CHECK(read_answer(fd).starts_with("OK\nstatus "));
  CHECK(read_answer(fd).starts_with("OK\n{\"commands\":["));
  shutdown(fd, SHUT_WR);
  bool closed = false;
  CHECK(read_answer(fd, 5s, &closed).starts_with("OK\nporticod 0.2.0"));
  CHECK(wait_eof(fd, 2s));
  close(fd);
  CHECK(d.wait_log("control socket: uid 0 (pid "));
}

TEST_CASE("a request line of 1 MB is refused and the connection closed", "[control][hostile]") {
  Controlled c;
  auto d = Daemon::start(c.config(greeting));
  const int fd = unix_connect(c.socket);
  std::thread sender([fd] { send_text(fd, std::string(1 << 20, 'a')); });
  bool closed = false;
  CHECK(read_answer(fd, 5s, &closed) == "ERR 64 request line longer than 4096 bytes\n\n");
  CHECK(wait_eof(fd, 5s));
  shutdown(fd, SHUT_RDWR);
  sender.join();
  close(fd);
  CHECK(d.wait_log("request line longer than 4096 bytes; closing the connection"));
  CHECK(c.ctl({"status"}).exit_code == 0);
}

TEST_CASE("binary garbage gets errors that hold no control character, and the daemon goes on", "[control][hostile]") {
  Controlled c;
  auto d = Daemon::start(c.config(greeting));
  std::mt19937 random(1234);
  for (int round = 0; round < 4; ++round) {
    const int fd = unix_connect(c.socket);
    std::string garbage(16384, '\0');
    for (auto& byte : garbage) byte = static_cast<char>(random());
    // Some lines short enough to be answered, the rest as it comes.
    for (std::size_t i = 0; i < 2000; i += 97) garbage[i] = '\n';
    std::thread sender([fd, &garbage] {
      send_text(fd, garbage);
      shutdown(fd, SHUT_WR);
    });
    std::string answers;
    bool closed = false;
    while (!closed) {
      const std::string part = read_answer(fd, 5s, &closed);
      if (part.empty() && !closed) break;
      answers += part;
    }
    CHECK(closed);
    shutdown(fd, SHUT_RDWR);
    sender.join();
    close(fd);
    CHECK(answers.starts_with("ERR 64 "));
    for (const char ch : answers) {
      const auto byte = static_cast<unsigned char>(ch);
      if (byte < 0x20 && byte != '\n') FAIL("control character " << int(byte) << " in an answer");
      if (byte == 0x7f) FAIL("DEL in an answer");
    }
  }
  CHECK(c.ctl({"status"}).exit_code == 0);
  Client hello(d.port());
  hello.send("x\n");
  CHECK(hello.read_all() == "Hello from server!\n");
}

TEST_CASE("a client that never finishes its line is told so and closed", "[control][hostile]") {
  Controlled c;
  auto d = Daemon::start(c.config(greeting));
  const int fd = unix_connect(c.socket, 15s);
  const auto began = Clock::now();
  REQUIRE(send_text(fd, "stat"));
  // Other clients are served meanwhile.
  CHECK(c.ctl({"status"}).exit_code == 0);
  bool closed = false;
  CHECK(read_answer(fd, 15s, &closed) == "ERR 64 request line not finished within 10s\n\n");
  CHECK(Clock::now() - began >= 9s);
  CHECK(wait_eof(fd, 2s));
  close(fd);
}

TEST_CASE("100 control clients at once: 16 are served, the others told to try again", "[control][hostile]") {
  Controlled c;
  auto d = Daemon::start(c.config(greeting));
  std::vector<int> fds;
  for (int i = 0; i < 100; ++i) fds.push_back(unix_connect(c.socket));
  for (int fd : fds) send_text(fd, "status\n");
  // The first 16 hold their slots until they close, which they do last:
  // however slowly porticod takes the others, those find no slot.
  int served = 0;
  int busy = 0;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    const int fd = fds[(i + 16) % fds.size()];
    const std::string answer = read_answer(fd);
    if (answer.starts_with("OK\nporticod 0.2.0")) {
      ++served;
    } else if (answer == "ERR 1 busy: 16 control clients are connected already; try again\n\n") {
      ++busy;
    } else {
      FAIL("unexpected answer: " << answer);
    }
    if (i >= 84) close(fd);  // one of the first 16
  }
  for (std::size_t i = 16; i < fds.size(); ++i) close(fds[i]);
  CHECK(served == 16);
  CHECK(busy == 84);
  CHECK(d.wait_log("control socket: 16 clients already connected; refused uid 0 (pid "));
  // Once they are gone, everything works as before.
  const auto status = c.ctl({"status"});
  CHECK(status.exit_code == 0);
  Client hello(d.port());
  hello.send("x\n");
  CHECK(hello.read_all() == "Hello from server!\n");
}
