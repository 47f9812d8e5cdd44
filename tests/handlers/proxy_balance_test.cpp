// The proxy's balancing, health checks and ejection, driven through the real
// porticod against small upstream servers that each test runs on
// 127.0.0.1 itself: each greets a client with its name (so the client knows
// where it landed), then echoes until EOF.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;

namespace {

// The lowest port the kernel hands out as a connection's source.
int ephemeral_low() {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 32768;
  range >> low;
  return low;
}

// An upstream on 127.0.0.1 that can be stopped (its port then refuses) and
// started again on the same port. Every session sends `banner` + "\n"
// (after reading one line from the client, with `wait_line`), then echoes
// until EOF. Sessions run on threads of their own; stop() and the
// destructor end them.
class Backend {
 public:
  explicit Backend(std::string banner, bool wait_line = false) : banner_(std::move(banner)), wait_line_(wait_line) {
    start();
  }
  ~Backend() { stop(); }

  // On a port below the kernel's ephemeral range, so that while the
  // backend is stopped no connection elsewhere (porticod's to the other
  // backends, say) takes the port as its source and keeps start() from
  // binding it again.
  void start() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int bound = -1;
    if (port_ != 0) {
      a.sin_port = htons(port_);
      bound = bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      // Another test may hold a port: try others.
      static std::mt19937 pick(std::random_device{}());
      const int low = ephemeral_low();
      const int first = std::max(1024, low - 10000);
      for (int attempt = 0; attempt < 200 && bound != 0; ++attempt) {
        port_ = static_cast<std::uint16_t>(std::uniform_int_distribution<int>(first, low - 1)(pick));
        a.sin_port = htons(port_);
        bound = bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
      }
    }
    if (bound != 0) {
      const int err = errno;
      close(std::exchange(listen_fd_, -1));
      throw std::runtime_error("bind to port " + std::to_string(port_) + ": " + std::strerror(err));
    }
    if (listen(listen_fd_, 64) != 0) throw std::runtime_error("listen");
    stopping_ = false;
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  // Closes the listening socket and every session.
  void stop() {
    if (listen_fd_ < 0) return;
    stopping_ = true;
    acceptor_.join();
    close(listen_fd_);
    listen_fd_ = -1;
    std::vector<std::thread> sessions;
    {
      std::lock_guard lock(mutex_);
      // As a killed server's connections end, but with a reset: a FIN
      // would leave them in TIME_WAIT on the port, in the way of start().
      const linger abortive{1, 0};
      for (int fd : fds_) {
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
        shutdown(fd, SHUT_RD);
      }
      sessions.swap(sessions_);
    }
    for (auto& t : sessions) t.join();
    std::lock_guard lock(mutex_);
    for (int fd : fds_) close(fd);
    fds_.clear();
  }

  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Connections accepted so far (health checks included).
  int accepted() const { return accepted_; }
  // Sessions that ended (the peer's EOF read, or torn down).
  int ended() const { return ended_; }

 private:
  void accept_loop() {
    while (!stopping_) {
      if (!wait_fd(listen_fd_, POLLIN, Clock::now() + 20ms)) continue;
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      std::lock_guard lock(mutex_);
      fds_.push_back(fd);
      sessions_.emplace_back([this, fd] {
        session(fd);
        ++ended_;
      });
    }
  }

  void session(int fd) {
    char buf[4096];
    if (wait_line_) {
      for (std::string line; line.find('\n') == std::string::npos;) {
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        line.append(buf, static_cast<std::size_t>(n));
      }
    }
    const std::string hello = banner_ + "\n";
    if (send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(hello.size())) return;
    for (;;) {
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      if (send(fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    shutdown(fd, SHUT_WR);
  }

  std::string banner_;
  bool wait_line_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> ended_{0};
  std::mutex mutex_;
  std::vector<int> fds_;
  std::vector<std::thread> sessions_;
  std::thread acceptor_;
};

// A proxy listener on 127.0.0.1, logging at debug level, with `upstream`
// as written (a TOML array) and `extra` lines.
std::string config(const std::string& upstream, const std::string& extra = "") {
  return "[daemon]\nlog_level = \"debug\"\n[[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:0\"\n"
         "handler = \"proxy\"\nupstream = " +
         upstream + "\n" + extra;
}

std::string list(const std::vector<const Backend*>& backends) {
  std::string out = "[";
  for (const auto* b : backends) out += (out.size() > 1 ? ", \"" : "\"") + b->address() + "\"";
  return out + "]";
}

// Where one client lands: the first line it reads ("" when refused).
std::string landing(std::uint16_t port, const std::string& source = "") {
  Client c(port, "127.0.0.1", 5s, source);
  std::string line;
  for (const auto until = Clock::now() + 5s; line.find('\n') == std::string::npos && Clock::now() < until;) {
    const std::string got = c.read_exactly(1, 5s);
    if (got.empty()) break;
    line += got;
  }
  if (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Waits until `text` is in the log, and returns how long that took.
Millis time_until_log(const Daemon& d, const std::string& text, Millis limit, std::size_t from = 0) {
  const auto started = Clock::now();
  if (!d.wait_log(text, limit, from)) return limit + 1ms;
  return std::chrono::duration_cast<Millis>(Clock::now() - started);
}

bool wait_count(const Daemon& d, const std::string& text, std::size_t n, Millis limit = 5s) {
  for (const auto until = Clock::now() + limit; Clock::now() < until;) {
    if (count(d.log(), text) >= n) return true;
    std::this_thread::sleep_for(2ms);
  }
  return false;
}

// Sockets of this machine still connecting (SYN_SENT) to 127.0.0.1:port.
int syn_sent_to(std::uint16_t port) {
  char remote[32];
  std::snprintf(remote, sizeof remote, "0100007F:%04X 02 ", port);
  std::ifstream tcp("/proc/net/tcp");
  int n = 0;
  for (std::string line; std::getline(tcp, line);) n += line.find(remote) != std::string::npos;
  return n;
}

void reload(Daemon& d, const std::string& text, std::size_t nth) {
  d.rewrite_config(text);
  d.signal(SIGHUP);
  for (const auto until = Clock::now() + 5s; Clock::now() < until;) {
    if (count(d.log(), "reload complete") >= nth) return;
    std::this_thread::sleep_for(10ms);
  }
  FAIL("no reload complete #" << nth << " in the log:\n" << d.log());
}

}  // namespace

TEST_CASE("round robin: every upstream in turn, exactly", "[handlers][proxy][balance]") {
  Backend a("A"), b("B"), c("C");
  auto d = Daemon::start(config(list({&a, &b, &c})));
  std::string order;
  for (int i = 0; i < 12; ++i) order += landing(d.port());
  CHECK(order == "ABCABCABCABC");
}

TEST_CASE("weights: round robin gives each upstream exactly its weight's share", "[handlers][proxy][balance]") {
  Backend a("A"), b("B"), c("C");
  auto d = Daemon::start(config("[\"" + a.address() + "\", { address = \"" + b.address() +
                                "\", weight = 3 }, { address = \"" + c.address() + "\", weight = 2 }]"));
  std::map<std::string, int> landed;
  for (int i = 0; i < 60; ++i) ++landed[landing(d.port())];
  // Weights 1:3:2 over 60 clients, with no tolerance needed: smooth weighted
  // round robin is exact over every multiple of the total weight.
  CHECK(landed["A"] == 10);
  CHECK(landed["B"] == 30);
  CHECK(landed["C"] == 20);
}

TEST_CASE("random_two: idle upstreams share in proportion to their weights", "[handlers][proxy][balance]") {
  Backend a("A"), b("B");
  auto d = Daemon::start(config("[\"" + a.address() + "\", { address = \"" + b.address() + "\", weight = 3 }]",
                                "balance = \"random_two\"\n"));
  std::map<std::string, int> landed;
  const int clients = 200;
  for (int i = 0; i < clients; ++i) {
    ++landed[landing(d.port())];
    // One client at a time, its relay over before the next comes: both
    // upstreams are idle at every pick.
    REQUIRE(wait_count(d, "relayed ", static_cast<std::size_t>(i + 1)));
  }
  // Then the first one drawn wins: B with odds 3 in 4, 150 of 200.
  // Tolerance ±30, 4.9 standard deviations of the binomial (6.1).
  INFO("A " << landed["A"] << ", B " << landed["B"]);
  CHECK(landed["A"] + landed["B"] == clients);
  CHECK(landed["B"] > 120);
  CHECK(landed["B"] < 180);
}

TEST_CASE("least_conn: a new client goes to the idle upstream", "[handlers][proxy][balance]") {
  Backend a("A"), b("B"), c("C");
  auto d = Daemon::start(config(list({&a, &b, &c}), "balance = \"least_conn\"\n"));
  // Three clients that stay: one on each upstream.
  std::vector<Client> held;
  std::map<std::string, std::size_t> where;
  for (int i = 0; i < 3; ++i) {
    held.emplace_back(d.port());
    std::string line = held.back().read_exactly(2, 5s);
    REQUIRE(line.size() == 2);
    where[line.substr(0, 1)] = held.size() - 1;
  }
  CHECK(where.size() == 3);
  // B's client leaves: B is the only idle upstream, and the next client
  // goes there.
  held[where["B"]].shutdown_write();
  CHECK(held[where["B"]].wait_closed(5s));
  REQUIRE(d.wait_log("relayed 0 bytes to " + b.address()));
  Client next(d.port());
  CHECK(next.read_exactly(2, 5s) == "B\n");
}

TEST_CASE("source_hash: a client address keeps its upstream; adding one moves about 1/N of them, all to it",
          "[handlers][proxy][balance]") {
  Backend a("A"), b("B"), c("C"), e("D"), f("E");
  auto d = Daemon::start(config(list({&a, &b, &c, &e}), "balance = \"source_hash\"\n"));
  const int clients = 200;
  std::map<int, std::string> before;
  for (int i = 1; i <= clients; ++i) {
    // 127.0.0.1 is the daemon's own listener address: sources from 127.0.0.2 on.
    const std::string source = "127.0.0." + std::to_string(i + 1);
    before[i] = landing(d.port(), source);
    REQUIRE(!before[i].empty());
    // Again from the same address (another port): the same upstream.
    CHECK(landing(d.port(), source) == before[i]);
  }
  std::map<std::string, int> spread;
  for (const auto& [i, where] : before) ++spread[where];
  INFO("A " << spread["A"] << ", B " << spread["B"] << ", C " << spread["C"] << ", D " << spread["D"]);
  for (const char* name : {"A", "B", "C", "D"}) CHECK(spread[name] > 20);  // 50 each on average

  reload(d, config(list({&a, &b, &c, &e, &f}), "balance = \"source_hash\"\n"), 1);
  int moved = 0;
  for (int i = 1; i <= clients; ++i) {
    const std::string now = landing(d.port(), "127.0.0." + std::to_string(i + 1));
    if (now == before[i]) continue;
    ++moved;
    CHECK(now == "E");  // nobody moves between the old four
  }
  // 1/5 of 200 is 40; tolerance ±25 (the ring's own unevenness included).
  CHECK(moved > 15);
  CHECK(moved < 65);
}

TEST_CASE("health checks: a killed upstream is down within interval × fall, gets no clients, and is back after "
          "it restarts",
          "[handlers][proxy][balance][health]") {
  Backend a("A"), b("B");
  auto d = Daemon::start(config(list({&a, &b}), "health_check_interval = \"200ms\"\nhealth_check_fall = 3\n"
                                                "health_check_rise = 2\nmax_fails = 0\n"));
  // The checks reach both.
  for (const auto until = Clock::now() + 3s; (a.accepted() < 2 || b.accepted() < 2) && Clock::now() < until;) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(b.accepted() >= 2);
  b.stop();
  // 3 × 200ms, plus a check in flight and the slack of a busy machine.
  const Millis down = time_until_log(d, "upstream " + b.address() + " down: 3 checks failed (connection refused)", 3s);
  INFO("marked down after " << down.count() << "ms");
  CHECK(down >= 400ms);
  CHECK(down < 1500ms);
  const std::size_t mark = d.log().size();
  std::string order;
  for (int i = 0; i < 6; ++i) order += landing(d.port());
  CHECK(order == "AAAAAA");
  // Not even tried: no failed attempt in the log.
  CHECK(count(d.log().substr(mark), "failed: Connection refused") == 0);

  b.start();
  const Millis up = time_until_log(d, "upstream " + b.address() + " up after 2 checks", 3s);
  INFO("back up after " << up.count() << "ms");
  CHECK(up < 1500ms);
  order.clear();
  for (int i = 0; i < 4; ++i) order += landing(d.port());
  CHECK(count(order, "B") == 2);
  // The change was logged once each way.
  CHECK(count(d.log(), "upstream " + b.address() + " down:") == 1);
  CHECK(count(d.log(), "upstream " + b.address() + " up after") == 1);
}

TEST_CASE("health checks never hold more than one connection to an upstream", "[handlers][proxy][health]") {
  // An upstream whose accept queue is full: every check waits its whole
  // timeout. One at a time means at most one connect in flight.
  const int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(bind(listen_fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  REQUIRE(listen(listen_fd, 0) == 0);
  const int filler = try_connect(ntohs(addr.sin_port));
  REQUIRE(filler >= 0);
  const std::string slow = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  Backend a("A");
  auto d = Daemon::start(config("[\"" + a.address() + "\", \"" + slow + "\"]",
                                "health_check_interval = \"50ms\"\nhealth_check_fall = 2\nconnect_timeout = \"300ms\"\n"));
  // Checks every 50ms, each hanging up to 50ms (the interval caps the
  // timeout): down after two.
  CHECK(d.wait_log("upstream " + slow + " down: 2 checks failed (timed out after 50ms)", 3s));
  std::this_thread::sleep_for(500ms);
  // Connections porticod has to the slow port: SYN_SENT sockets show in
  // /proc/net/tcp as state 02. At most one per upstream.
  CHECK(syn_sent_to(ntohs(addr.sin_port)) <= 1);
  close(filler);
  close(listen_fd);
}

TEST_CASE("passive ejection: a failed client connect leaves the upstream out for fail_timeout, without checks",
          "[handlers][proxy][balance]") {
  Backend a("A"), b("B");
  const std::string dead = b.address();
  b.stop();
  auto d = Daemon::start(config(list({&a, &b}), "fail_timeout = \"1s\"\n"));
  // Round robin: the first client lands on A, the second is tried on B,
  // fails over to A and ejects B.
  CHECK(landing(d.port()) == "A");
  CHECK(landing(d.port()) == "A");
  CHECK(d.wait_log("upstream " + dead + " down for 1s: 1 client connect failed (connection refused)"));
  for (int i = 0; i < 6; ++i) CHECK(landing(d.port()) == "A");
  // Tried once in all while ejected.
  CHECK(count(d.log(), "upstream " + dead + " failed: Connection refused") == 1);
  // After fail_timeout it is tried again; restarted meanwhile, it takes
  // clients again.
  b.start();
  std::this_thread::sleep_for(1100ms);
  std::string order;
  for (int i = 0; i < 4; ++i) order += landing(d.port());
  CHECK(count(order, "B") == 2);
  CHECK(d.wait_log("upstream " + dead + ": trying it again after 1s down"));
}

TEST_CASE("max_fails counts failures within fail_timeout; a lone upstream is never ejected",
          "[handlers][proxy][balance]") {
  Backend a("A"), b("B");
  b.stop();
  {
    auto d = Daemon::start(config(list({&a, &b}), "max_fails = 2\n"));
    CHECK(landing(d.port()) == "A");
    CHECK(landing(d.port()) == "A");  // B failed once: still in
    CHECK(landing(d.port()) == "A");
    CHECK(landing(d.port()) == "A");  // twice: out
    CHECK(d.wait_log("upstream " + b.address() + " down for 10s: 2 client connects failed (connection refused)"));
    for (int i = 0; i < 4; ++i) CHECK(landing(d.port()) == "A");
    CHECK(count(d.log(), "upstream " + b.address() + " failed: Connection refused") == 2);
  }
  auto d = Daemon::start(config(list({&b})));
  for (int i = 0; i < 3; ++i) {
    Client c(d.port());
    CHECK(c.wait_closed(5s));
  }
  // Each client tried it: nowhere else to go.
  CHECK(d.wait_log("no upstream reachable: " + b.address() + " (Connection refused)"));
  CHECK(count(d.log(), "upstream " + b.address() + " failed: Connection refused") == 3);
  CHECK(count(d.log(), "down for") == 0);
}

TEST_CASE("backups take clients only while every primary is down", "[handlers][proxy][balance][health]") {
  Backend a("A"), b("B"), spare("S");
  auto d = Daemon::start(config("[\"" + a.address() + "\", \"" + b.address() + "\", { address = \"" +
                                    spare.address() + "\", backup = true }]",
                                "health_check_interval = \"100ms\"\nhealth_check_fall = 1\nhealth_check_rise = 1\n"));
  std::string order;
  for (int i = 0; i < 6; ++i) order += landing(d.port());
  CHECK(order == "ABABAB");
  a.stop();
  REQUIRE(d.wait_log("upstream " + a.address() + " down: 1 check failed", 3s));
  order.clear();
  for (int i = 0; i < 4; ++i) order += landing(d.port());
  CHECK(order == "BBBB");  // one primary left: no backup yet
  b.stop();
  REQUIRE(d.wait_log("upstream " + b.address() + " down: 1 check failed", 3s));
  order.clear();
  for (int i = 0; i < 4; ++i) order += landing(d.port());
  CHECK(order == "SSSS");
  a.start();
  REQUIRE(d.wait_log("upstream " + a.address() + " up after 1 check", 3s));
  order.clear();
  for (int i = 0; i < 4; ++i) order += landing(d.port());
  CHECK(order == "AAAA");
}

TEST_CASE("every upstream down: a client is refused at once, logged once per burst and counted",
          "[handlers][proxy][balance][health]") {
  // Two upstreams whose accept queues are full: a client would wait
  // connect_timeout (3s) for each.
  std::vector<int> fds;
  std::vector<std::string> addresses;
  for (int i = 0; i < 2; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    REQUIRE(listen(fd, 0) == 0);
    fds.push_back(fd);
    fds.push_back(try_connect(ntohs(addr.sin_port)));
    addresses.push_back("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  }
  auto d = Daemon::start(config("[\"" + addresses[0] + "\", \"" + addresses[1] + "\"]",
                                "connect_timeout = \"3s\"\nhealth_check_interval = \"100ms\"\nhealth_check_fall = 1\n"));
  REQUIRE(d.wait_log("upstream " + addresses[0] + " down: 1 check failed (timed out after 100ms)", 3s));
  REQUIRE(d.wait_log("upstream " + addresses[1] + " down: 1 check failed (timed out after 100ms)", 3s));
  for (int i = 0; i < 5; ++i) {
    Client c(d.port());
    const auto started = Clock::now();
    bool closed = false;
    CHECK(c.read_all(5s, &closed).empty());
    CHECK(closed);
    CHECK(Clock::now() - started < 500ms);
  }
  CHECK(d.wait_log("no upstream up: client refused (all 2 upstreams down)"));
  CHECK(count(d.log(), "no upstream up") == 1);
  CHECK(d.wait_log("... and 4 more like the last line since it was logged", 7s));
  for (int fd : fds) close(fd);
}

TEST_CASE("health_check_send and health_check_expect: an upstream that answers wrong is down",
          "[handlers][proxy][balance][health]") {
  Backend good("OK-good", true), wrong("NO-wrong", true);
  auto d = Daemon::start(config(list({&good, &wrong}),
                                "health_check_interval = \"100ms\"\nhealth_check_fall = 2\n"
                                "health_check_send = \"hello\\n\"\nhealth_check_expect = \"OK-\"\n"));
  CHECK(d.wait_log("upstream " + wrong.address() + " down: 2 checks failed (answered \"NO-\", expected \"OK-\")", 3s));
  for (int i = 0; i < 4; ++i) {
    Client c(d.port());
    REQUIRE(c.send("hello\n"));
    CHECK(c.read_exactly(8, 5s) == "OK-good\n");
  }
  // The good one answered every check: never down.
  CHECK(count(d.log(), "upstream " + good.address() + " down") == 0);
}

TEST_CASE("a check whose upstream closes without the expected answer fails", "[handlers][proxy][health]") {
  // An upstream that waits for a line nobody sends: the check times out.
  Backend silent("OK", true), fine("OK");
  auto d = Daemon::start(config(list({&silent, &fine}), "health_check_interval = \"100ms\"\nhealth_check_fall = 1\n"
                                                        "health_check_expect = \"OK\"\n"));
  CHECK(d.wait_log("upstream " + silent.address() + " down: 1 check failed (timed out after 100ms)", 3s));
  CHECK(count(d.log(), "upstream " + fine.address() + " down") == 0);
}

TEST_CASE("a reload keeps what is known of upstreams that stay, stops checking removed ones, and lets their "
          "connections finish",
          "[handlers][proxy][balance][health][reload]") {
  Backend a("A"), b("B"), c("C");
  const std::string checks = "health_check_interval = \"300ms\"\nhealth_check_fall = 2\nmax_fails = 0\n";
  auto d = Daemon::start(config(list({&a, &b}), checks));
  // A client on A that stays through the reload.
  Client stays(d.port());
  REQUIRE(stays.read_exactly(2, 5s) == "A\n");
  b.stop();
  REQUIRE(d.wait_log("upstream " + b.address() + " down: 2 checks failed", 3s));

  reload(d, config(list({&b, &c}), checks), 1);
  const std::size_t mark = d.log().size();
  const int a_checks = a.accepted();
  // B is still known down: no client goes there, none is even tried, and no
  // second "down" line (which relearning it would log).
  for (int i = 0; i < 4; ++i) CHECK(landing(d.port()) == "C");
  std::this_thread::sleep_for(1s);
  const std::string after = d.log().substr(mark);
  CHECK(count(after, "upstream " + b.address() + " failed") == 0);
  CHECK(count(d.log(), "upstream " + b.address() + " down") == 1);
  // A is no longer checked (its one client came before the reload) ...
  CHECK(a.accepted() == a_checks);
  // ... and its open connection still works.
  REQUIRE(stays.send("still here"));
  CHECK(stays.read_exactly(10, 5s) == "still here");
  // B back: found by the new handler's checks.
  b.start();
  CHECK(d.wait_log("upstream " + b.address() + " up after 2 checks", 3s));
}

TEST_CASE("balancing config mistakes are errors at FILE:LINE:COL", "[handlers][proxy][balance][config]") {
  TempDir dir;
  const auto check = [&](const std::string& lines, const std::string& where, const std::string& message) {
    INFO(lines);
    const auto path = dir.write("b.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"proxy\"\n" + lines);
    const auto r = run_porticod({"--check", "-c", path});
    CHECK(r.exit_code == 78);
    CHECK_THAT(r.err, Contains(path + ":" + where + ": " + message));
  };
  check("upstream = [{ address = \"10.0.0.1:80\", weight = 0 }]\n", "4:49",
        "\"weight\" in an entry of \"upstream\" in listener #1 must be from 1 to 256, not 0");
  check("upstream = [\"10.0.0.2:80\", { address = \"10.0.0.1:80\", weight = -2 }]\n", "4:64",
        "\"weight\" in an entry of \"upstream\" in listener #1 must be from 1 to 256, not -2");
  check("upstream = [{ address = \"10.0.0.1:80\", wieght = 2 }]\n", "4:40",
        "unknown key \"wieght\" in an entry of \"upstream\" in listener #1 (did you mean \"weight\"?)");
  check("upstream = [{ weight = 2 }]\n", "4:13",
        "an entry of \"upstream\" in listener #1 is missing the required key \"address\"");
  check("upstream = [\"10.0.0.1:80\", { address = \"10.0.0.1\" }]\n", "4:28",
        "invalid upstream \"10.0.0.1\": missing port");
  check("upstream = [\"10.0.0.1:80\", 5]\n", "4:28",
        "\"upstream\" in listener #1 must hold address strings or tables such as { address = \"10.0.0.2:5432\", "
        "weight = 3 }, not an integer");
  check("upstream = [{ address = \"10.0.0.1:80\", backup = \"yes\" }]\n", "4:49",
        "\"backup\" in an entry of \"upstream\" in listener #1 must be a boolean (true or false), not a string");
  check("upstream = [{ address = \"10.0.0.1:80\", backup = true }, { address = \"10.0.0.2:80\", backup = true }]\n",
        "4:12", "\"upstream\" lists only backups");
  check("upstream = [\"10.0.0.1:80\"]\nbalance = \"leastconn\"\n", "5:11",
        "\"balance\" in listener #1 must be one of round_robin, least_conn, source_hash, random_two, not \"leastconn\"");
  check("upstream = [\"10.0.0.1:80\"]\nhealth_check_expect = \"+OK\"\n", "5:23",
        "\"health_check_expect\" applies only with health_check_interval set (health checks are off)");
  check("upstream = [\"10.0.0.1:80\"]\nhealth_check_interval = \"1s\"\nhealth_check_fall = 0\n", "6:21",
        "\"health_check_fall\" in listener #1 must be from 1 to 1000, not 0");
  check("upstream = [\"10.0.0.1:80\"]\nmax_fails = 0\nfail_timeout = \"5s\"\n", "6:16",
        "\"fail_timeout\" applies only with max_fails above 0");
  // All of them at once, each at its place.
  const auto path = dir.write("all.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"proxy\"\n"
                                          "upstream = [{ address = \"x\", weight = 0 }]\nbalance = \"nope\"\n");
  const auto r = run_porticod({"--check", "-c", path});
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Contains(path + ":4:39: "));
  CHECK_THAT(r.err, Contains(path + ":5:11: "));
}

TEST_CASE("strings and tables in one upstream list: --print-config writes them back as given",
          "[handlers][proxy][balance][config]") {
  TempDir dir;
  const auto path = dir.write("p.toml", "[[listener]]\naddress = \"127.0.0.1:0\"\nhandler = \"proxy\"\n"
                                        "upstream = [\"10.0.0.1:5432\", { address = \"10.0.0.2:5432\", weight = 3 }, "
                                        "{ address = \"10.0.0.9:5432\", backup = true }]\nbalance = \"least_conn\"\n");
  const auto r = run_porticod({"--print-config", "-c", path});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("upstream = [\"10.0.0.1:5432\", { address = \"10.0.0.2:5432\", weight = 3 }, "
                             "{ address = \"10.0.0.9:5432\", backup = true }]\n"));
  CHECK_THAT(r.out, Contains("balance = \"least_conn\"\n"));
}
