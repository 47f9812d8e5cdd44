// The proxy handler, driven through the real porticod, relaying to upstream
// servers that each test starts on 127.0.0.1 (or a Unix socket) itself.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <portico/proxy_protocol.hpp>
#include "handlers/service_support.hpp"
#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;

namespace {

// ---- blocking steps with deadlines, for the upstream threads -------------

// Reads what is there (waiting up to the deadline for something): the
// bytes, or "" at EOF, error or deadline (`eof` tells EOF apart).
std::string read_some(int fd, Clock::time_point deadline, bool* eof = nullptr) {
  char buf[65536];
  if (eof) *eof = false;
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) return std::string(buf, static_cast<std::size_t>(n));
    if (n == 0) {
      if (eof) *eof = true;
      return {};
    }
    if ((errno != EAGAIN && errno != EINTR) || !wait_fd(fd, POLLIN, deadline)) return {};
  }
}

bool write_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if ((errno != EAGAIN && errno != EINTR) || !wait_fd(fd, POLLOUT, deadline)) {
      return false;
    }
  }
  return true;
}

// Waits until `flag` is set (by an upstream's thread) or the deadline
// passes; true if it was set.
bool wait_for(const std::atomic<bool>& flag, Clock::time_point deadline) {
  while (!flag && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  return flag;
}

std::string read_to_eof(int fd, Clock::time_point deadline) {
  std::string out;
  for (bool eof = false; !eof;) {
    const std::string chunk = read_some(fd, deadline, &eof);
    if (chunk.empty() && !eof) break;
    out += chunk;
  }
  return out;
}

// ---- upstream servers -----------------------------------------------------

// A server on threads of its own: each accepted connection runs `session`
// (with a non-blocking descriptor) on a thread of its own. Destruction
// shuts every session's socket down, which ends any wait, and joins.
class Upstream {
 public:
  using Session = std::function<void(int fd)>;

  // On 127.0.0.1 (`backlog` 0 and never accepting: a server whose queue
  // fills, so that further connects hang), or on a Unix socket at `path`.
  explicit Upstream(Session session, const std::string& path = "", bool accepting = true)
      : session_(std::move(session)) {
    if (path.empty()) {
      listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof a;
      if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len) != 0) throw std::runtime_error("bind");
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
      port_ = ntohs(a.sin_port);
    } else {
      listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
      if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind");
      chmod(path.c_str(), 0777);  // porticod may run as nobody
    }
    if (listen(listen_fd_, accepting ? 64 : 0) != 0) throw std::runtime_error("listen");
    if (accepting) acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~Upstream() {
    stopping_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : sessions_) t.join();
    for (int fd : fds_) close(fd);
    close(listen_fd_);
  }

  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_; }

 private:
  void accept_loop() {
    while (!stopping_) {
      if (!wait_fd(listen_fd_, POLLIN, Clock::now() + 50ms)) continue;
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      std::lock_guard lock(mutex_);
      fds_.push_back(fd);
      sessions_.emplace_back([this, fd] { session_(fd); });
    }
  }

  Session session_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::mutex mutex_;
  std::vector<int> fds_;
  std::vector<std::thread> sessions_;
  std::thread acceptor_;
};

// Sends back everything until EOF, then shuts down its side.
void echo_session(int fd) {
  const auto deadline = Clock::now() + 20s;
  for (bool eof = false; !eof;) {
    const std::string chunk = read_some(fd, deadline, &eof);
    if (chunk.empty() && !eof) return;
    if (!write_all(fd, chunk, deadline)) return;
  }
  shutdown(fd, SHUT_WR);
}

// Greets with `name` and closes.
Upstream::Session banner_session(const std::string& name) {
  return [name](int fd) {
    write_all(fd, name + "\n", Clock::now() + 5s);
    shutdown(fd, SHUT_WR);
  };
}

// Parses the PROXY header with portico's own parser, answers with what it
// said ("<version> <source> <destination>"), then echoes.
void proxy_header_session(int fd) {
  const auto deadline = Clock::now() + 5s;
  std::string received;
  for (;;) {
    bool eof = false;
    const std::string chunk = read_some(fd, deadline, &eof);
    if (chunk.empty()) return;
    received += chunk;
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(received.data());
    const auto r = portico::parse_proxy_header(std::span(bytes, received.size()));
    if (r.status == portico::ProxyParseStatus::need_more) continue;
    if (r.status == portico::ProxyParseStatus::invalid) {
      write_all(fd, "invalid: " + r.error + "\n", deadline);
      return;
    }
    const std::string answer = std::to_string(r.header.version) + " " + r.header.source.to_string() + " " +
                               r.header.destination.to_string() + "\n";
    if (!write_all(fd, answer + received.substr(r.header_length), deadline)) return;
    break;
  }
  echo_session(fd);
}

// A port nothing listens on: connecting to it is refused.

// A proxy listener on a free port of 127.0.0.1, logging at debug level;
// `extra` is appended to the listener's table, `daemon` to [daemon].
std::string proxy_config(const std::vector<std::string>& upstreams, const std::string& extra = "",
                         const std::string& daemon = "") {
  std::string list;
  for (const auto& u : upstreams) list += (list.empty() ? "\"" : ", \"") + u + "\"";
  return "[daemon]\nlog_level = \"debug\"\n" + daemon +
         "[[listener]]\nname = \"proxy\"\naddress = \"127.0.0.1:0\"\nhandler = \"proxy\"\nupstream = [" + list +
         "]\n" + extra;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

std::uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("proxy relays bytes exactly both ways, 10 MB each way at once", "[handlers][proxy]") {
  Upstream echo(echo_session);
  auto d = Daemon::start(proxy_config({echo.address()}));
  Client c(d.port());
  const std::string data = random_bytes(10 * 1024 * 1024, 1);
  // Sending and reading together: the proxy's buffers are bounded, so a
  // client that only sent would stall once they filled.
  std::thread sender([&] { CHECK(c.send(data)); });
  const std::string back = c.read_exactly(data.size(), 15s);
  sender.join();
  CHECK(back.size() == data.size());
  CHECK(back == data);
  c.shutdown_write();
  bool closed = false;
  CHECK(c.read_all(5s, &closed).empty());
  CHECK(closed);
  CHECK(d.wait_log("relayed 10485760 bytes to " + echo.address() + " and 10485760 bytes back"));
}

TEST_CASE("a fast upstream and a client that does not read cost the proxy bounded memory", "[handlers][proxy]") {
  std::atomic<std::size_t> sent{0};
  Upstream firehose([&](int fd) {
    const std::string block(64 * 1024, 'x');
    // Ends when the proxy stops taking bytes for a second, or at teardown.
    while (write_all(fd, block, Clock::now() + 1s)) sent += block.size();
  });
  auto d = Daemon::start(proxy_config({firehose.address()}));
  Client c(d.port());
  // Reading a little first warms the relay up (its shared buffer).
  REQUIRE(c.read_exactly(1024 * 1024, 5s).size() == 1024 * 1024);
  const long before = rss_kib(d.pid());
  std::this_thread::sleep_for(1500ms);  // the client reads nothing
  const long after = rss_kib(d.pid());
  INFO("upstream sent " << sent << " bytes; RSS " << before << " -> " << after << " KiB");
  // What the upstream could send is what the kernel buffers hold, not more.
  CHECK(sent < 64u * 1024 * 1024);
  CHECK(after - before < 2048);
}

TEST_CASE("proxy passes the client's half-close on and keeps the other direction open", "[handlers][proxy]") {
  // The upstream answers only after the client's EOF reached it.
  Upstream counter([](int fd) {
    const auto deadline = Clock::now() + 5s;
    const std::string got = read_to_eof(fd, deadline);
    write_all(fd, "got " + std::to_string(got.size()) + " bytes\n", deadline);
    shutdown(fd, SHUT_WR);
  });
  auto d = Daemon::start(proxy_config({counter.address()}));
  Client c(d.port());
  REQUIRE(c.send("twelve bytes"));
  c.shutdown_write();
  bool closed = false;
  CHECK(c.read_all(5s, &closed) == "got 12 bytes\n");
  CHECK(closed);
}

TEST_CASE("proxy passes the upstream's half-close on and keeps the client's direction open", "[handlers][proxy]") {
  std::atomic<bool> done{false};
  std::string after;
  Upstream early([&](int fd) {
    const auto deadline = Clock::now() + 5s;
    write_all(fd, "bye early\n", deadline);
    shutdown(fd, SHUT_WR);
    after = read_to_eof(fd, deadline);
    done = true;
  });
  auto d = Daemon::start(proxy_config({early.address()}));
  Client c(d.port());
  bool closed = false;
  CHECK(c.read_all(5s, &closed) == "bye early\n");
  CHECK(closed);
  // The client can still talk after the upstream's EOF.
  REQUIRE(c.send("still here"));
  c.shutdown_write();
  CHECK(c.wait_closed(5s));
  CHECK(wait_for(done, Clock::now() + 5s));
  CHECK(after == "still here");
}

// A last message and the end that follows it, arriving while porticod is
// stopped, come to it on one edge of epoll: the read that takes the message
// must not be taken for the last before the next edge (there is none).
// Each direction in turn, with the connection already waiting between
// messages.
TEST_CASE("proxy passes on a last message and the end that came with it", "[handlers][proxy]") {
  const bool from_upstream = GENERATE(true, false);
  INFO((from_upstream ? "the upstream's" : "the client's") << " last message and end");
  std::atomic<bool> go{false};
  std::atomic<bool> done{false};
  std::string upstream_got;
  Upstream up([&](int fd) {
    const auto deadline = Clock::now() + 10s;
    write_all(fd, read_some(fd, deadline), deadline);  // the first message, echoed
    if (!from_upstream) {
      upstream_got = read_to_eof(fd, deadline);
      write_all(fd, "got it\n", deadline);
      shutdown(fd, SHUT_WR);
      done = true;
      return;
    }
    wait_for(go, deadline);
    write_all(fd, "last\n", deadline);
    shutdown(fd, SHUT_WR);
    upstream_got = read_to_eof(fd, deadline);
    done = true;
  });
  auto d = Daemon::start(proxy_config({up.address()}));
  Client c(d.port());
  REQUIRE(c.send("first\n"));
  REQUIRE(c.read_exactly(6, 5s) == "first\n");
  std::this_thread::sleep_for(50ms);  // both directions wait for more
  REQUIRE(::kill(d.pid(), SIGSTOP) == 0);
  if (from_upstream) {
    go = true;
  } else {
    REQUIRE(c.send("last\n"));
    c.shutdown_write();
  }
  std::this_thread::sleep_for(200ms);
  REQUIRE(::kill(d.pid(), SIGCONT) == 0);
  bool closed = false;
  CHECK(c.read_all(5s, &closed) == (from_upstream ? "last\n" : "got it\n"));
  CHECK(closed);
  if (from_upstream) {
    c.shutdown_write();
    CHECK(c.wait_closed(5s));
  }
  REQUIRE(wait_for(done, Clock::now() + 5s));
  CHECK(upstream_got == (from_upstream ? "" : "last\n"));
}

TEST_CASE("proxy fails over to the next upstream when one refuses", "[handlers][proxy]") {
  const RefusedPort refused;
  const std::uint16_t dead = refused.port();
  Upstream echo(echo_session);
  auto d = Daemon::start(proxy_config({"127.0.0.1:" + std::to_string(dead), echo.address()}));
  Client c(d.port());
  REQUIRE(c.send("ping"));
  CHECK(c.read_exactly(4, 5s) == "ping");
  CHECK(d.wait_log("upstream 127.0.0.1:" + std::to_string(dead) + " failed: Connection refused"));
  CHECK(d.wait_log("connected to upstream " + echo.address()));
}

TEST_CASE("proxy takes upstreams round-robin", "[handlers][proxy]") {
  Upstream a(banner_session("A"));
  Upstream b(banner_session("B"));
  auto d = Daemon::start(proxy_config({a.address(), b.address()}));
  std::string order;
  for (int i = 0; i < 4; ++i) {
    Client c(d.port());
    order += c.read_all(5s);
  }
  CHECK(order == "A\nB\nA\nB\n");
}

TEST_CASE("proxy closes the client and logs one line when no upstream is reachable", "[handlers][proxy]") {
  const RefusedPort refused1;
  const RefusedPort refused2;
  const std::uint16_t dead1 = refused1.port();
  const std::uint16_t dead2 = refused2.port();
  // A server whose accept queue is full: the handshake never completes.
  Upstream full([](int) {}, "", false);
  const int filler = try_connect(full.port());
  REQUIRE(filler >= 0);
  auto d = Daemon::start(proxy_config({"127.0.0.1:" + std::to_string(dead1), "127.0.0.1:" + std::to_string(dead2),
                                       full.address()},
                                      "connect_timeout = \"300ms\"\n"));
  Client c(d.port());
  const auto started = Clock::now();
  CHECK(c.wait_closed(5s));
  CHECK(Clock::now() - started < 3s);
  CHECK(d.wait_log("no upstream reachable: 127.0.0.1:" + std::to_string(dead1) + " (Connection refused), 127.0.0.1:" +
                   std::to_string(dead2) + " (Connection refused), " + full.address() + " (timed out after 300ms)"));
  close(filler);
}

TEST_CASE("proxy logs a burst of unreachable upstreams once, then how many more there were", "[handlers][proxy][log]") {
  const RefusedPort refused;
  const std::uint16_t dead = refused.port();
  auto d = Daemon::start(proxy_config({"127.0.0.1:" + std::to_string(dead)}));
  std::vector<Client> clients;
  for (int i = 0; i < 50; ++i) clients.emplace_back(d.port());
  for (auto& c : clients) CHECK(c.wait_closed(3s));
  // One line per 5s; the other 49 are counted when the 5s end.
  CHECK(d.wait_log("[proxy] ... and 49 more like the last line since it was logged", 7s));
  const std::string log = d.log();
  std::size_t lines = 0;
  for (auto at = log.find("no upstream reachable"); at != std::string::npos;
       at = log.find("no upstream reachable", at + 1)) {
    ++lines;
  }
  CHECK(lines == 1);
}

TEST_CASE("proxy sends a PROXY v1 or v2 header with the client's address", "[handlers][proxy]") {
  Upstream parser(proxy_header_session);
  for (const std::string version : {"v1", "v2"}) {
    INFO(version);
    auto d = Daemon::start(proxy_config({parser.address()}, "send_proxy = \"" + version + "\"\n"));
    Client c(d.port());
    const std::string expected = version.substr(1) + " 127.0.0.1:" + std::to_string(local_port(c.fd())) +
                                 " 127.0.0.1:" + std::to_string(d.port()) + "\n";
    CHECK(c.read_exactly(expected.size(), 5s) == expected);
    // The client's own bytes follow the header untouched.
    REQUIRE(c.send("payload"));
    CHECK(c.read_exactly(7, 5s) == "payload");
  }
}

TEST_CASE("proxy relays to a Unix socket upstream", "[handlers][proxy]") {
  TempDir dir;
  const std::string path = (dir.path() / "up.sock").string();
  Upstream echo(echo_session, path);
  auto d = Daemon::start(proxy_config({"unix:" + path}));
  Client c(d.port());
  const std::string data = random_bytes(1024 * 1024, 2);
  std::thread sender([&] { CHECK(c.send(data)); });
  CHECK(c.read_exactly(data.size(), 10s) == data);
  sender.join();
  c.shutdown_write();
  CHECK(c.wait_closed(5s));
}

TEST_CASE("proxy resolves a host name upstream", "[handlers][proxy]") {
  Upstream echo(echo_session);
  auto d = Daemon::start(proxy_config({"localhost:" + std::to_string(echo.port())}));
  Client c(d.port());
  REQUIRE(c.send("by name"));
  CHECK(c.read_exactly(7, 5s) == "by name");
}

TEST_CASE("proxy's idle timeout counts bytes in either direction", "[handlers][proxy]") {
  // The upstream talks for a while (the client says nothing), then falls silent.
  Upstream ticker([](int fd) {
    for (int i = 0; i < 6; ++i) {
      if (!write_all(fd, "tick\n", Clock::now() + 1s)) return;
      std::this_thread::sleep_for(150ms);
    }
    read_to_eof(fd, Clock::now() + 5s);
  });
  auto d = Daemon::start(proxy_config({ticker.address()}, "idle_timeout = \"400ms\"\n"));
  Client c(d.port());
  const auto started = Clock::now();
  bool closed = false;
  CHECK(c.read_all(5s, &closed) == "tick\ntick\ntick\ntick\ntick\ntick\n");
  CHECK(closed);
  const auto lasted = Clock::now() - started;
  CHECK(lasted >= 1100ms);  // 6 ticks (750ms) + 400ms of silence
  CHECK(lasted < 3s);
  CHECK(d.wait_log("closed: timed out (idle_timeout 400ms)"));
}

TEST_CASE("a server shutdown closes proxied connections and their upstreams", "[handlers][proxy]") {
  std::atomic<bool> upstream_closed{false};
  Upstream waiter([&](int fd) {
    read_to_eof(fd, Clock::now() + 10s);
    upstream_closed = true;
  });
  auto d = Daemon::start(proxy_config({waiter.address()}, "", "shutdown_timeout = \"200ms\"\n"));
  Client c(d.port());
  for (auto until = Clock::now() + 5s; waiter.accepted() == 0 && Clock::now() < until;) {
    std::this_thread::sleep_for(5ms);
  }
  d.signal(SIGTERM);
  CHECK(c.wait_closed(5s));
  CHECK(d.wait_exit(5s) == 0);
  CHECK(wait_for(upstream_closed, Clock::now() + 5s));
}

TEST_CASE("bad upstreams are config errors with their position", "[handlers][proxy]") {
  TempDir dir;
  const auto check = [&](const std::string& upstream, const std::string& message) {
    INFO(upstream);
    const auto path = dir.write("p.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"proxy\"\n"
                                          "upstream = [\"" + upstream + "\"]\n");
    const auto r = run_porticod({"--check", "-c", path});
    CHECK(r.exit_code == 78);
    // The position of the entry, not of the key or the array.
    CHECK_THAT(r.err, Contains(path + ":4:13: " + message));
  };
  check("10.0.0.1", "invalid upstream \"10.0.0.1\": missing port");
  check("::1:80", "invalid upstream \"::1:80\": an IPv6 address needs brackets");
  check("db.example:0", "invalid upstream \"db.example:0\": port 0 cannot be connected to");
  check("db..example:5432",
        "invalid upstream \"db..example:5432\": \"db..example\" is neither an IP address nor a valid host name");
  check("300.1.1.1:80", "invalid upstream \"300.1.1.1:80\": \"300.1.1.1\" is not an IPv4 address\n");
  check("unix:relative", "invalid upstream \"unix:relative\": a Unix socket path must be absolute");
  const auto empty = dir.write("e.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"proxy\"\n"
                                         "upstream = []\n");
  const auto r = run_porticod({"--check", "-c", empty});
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Contains("\"upstream\" needs at least one address"));
}
