// The echo handler (RFC 862), driven through the real porticod over 127.0.0.1.

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "handlers/service_support.hpp"
#include "support/daemon.hpp"

using namespace portico::test;

namespace {

std::string random_bytes(std::size_t n) {
  std::mt19937 gen(862);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(gen());
  return out;
}

// Sends `payload` while reading the echo back, interleaved with poll() on the
// client's non-blocking socket, so that neither side has to buffer it all.
// Returns what came back: fewer bytes on EOF, an error or the timeout.
std::string exchange(int fd, const std::string& payload, Millis timeout) {
  std::string back;
  std::size_t sent = 0;
  char buf[65536];
  const auto deadline = Clock::now() + timeout;
  while (back.size() < payload.size() && Clock::now() < deadline) {
    pollfd p{fd, static_cast<short>(POLLIN | (sent < payload.size() ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 100) < 0 && errno != EINTR) break;
    if (p.revents & POLLOUT) {
      const ssize_t n =
          ::send(fd, payload.data() + sent, std::min<std::size_t>(payload.size() - sent, 65536), MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) break;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) back.append(buf, static_cast<std::size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
    }
  }
  return back;
}

// Sends as much as the connection takes without the other side reading:
// stops once nothing more fits for `quiet`, or after `cap` bytes.
std::size_t send_until_full(int fd, Millis quiet, std::size_t cap) {
  const std::string chunk(65536, 'x');
  std::size_t sent = 0;
  while (sent < cap) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(quiet.count())) <= 0) break;
    const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<std::size_t>(n);
    if (n < 0 && errno != EAGAIN && errno != EINTR) break;
  }
  return sent;
}

}  // namespace

TEST_CASE("echo sends back exactly what each exchange sent", "[handlers][echo]") {
  auto d = Daemon::start(service_config("echo"));
  Client c(d.port());
  REQUIRE(c.send("hello\r\n"));
  CHECK(c.read_exactly(7, 5s) == "hello\r\n");
  const std::string binary("\0\xff\r\n\x7f", 5);
  REQUIRE(c.send(binary));
  CHECK(c.read_exactly(5, 5s) == binary);
  c.shutdown_write();
  bool closed = false;
  CHECK(c.read_all(5s, &closed).empty());
  CHECK(closed);
  CHECK(d.wait_log("client closed its side; echoed 12 of 12 bytes received"));
}

TEST_CASE("echo returns 1 MiB sent while the client reads concurrently", "[handlers][echo]") {
  auto d = Daemon::start(service_config("echo"));
  Client c(d.port());
  const std::string payload = random_bytes(1 << 20);
  const std::string back = exchange(c.fd(), payload, 10s);
  REQUIRE(back.size() == payload.size());
  CHECK(back == payload);
}

TEST_CASE("echo returns everything after a half-close, then closes", "[handlers][echo]") {
  auto d = Daemon::start(service_config("echo"));
  Client c(d.port());
  // Small enough for the socket buffers to hold while the client is not
  // reading yet.
  const std::string payload = random_bytes(64 * 1024);
  REQUIRE(c.send(payload));
  c.shutdown_write();
  bool closed = false;
  const std::string back = c.read_all(5s, &closed);
  CHECK(closed);
  REQUIRE(back.size() == payload.size());
  CHECK(back == payload);
}

// A message and the client's end that come together are reported by one
// edge of epoll: the read that takes the message leaves the end in the
// socket, and only a read tried at once sees it. porticod is stopped while
// both arrive, so that they surely come together.
TEST_CASE("echo closes when a message and the client's end come together", "[handlers][echo]") {
  auto d = Daemon::start(service_config("echo"));
  Client c(d.port());
  REQUIRE(c.send("first\n"));
  REQUIRE(c.read_exactly(6, 3s) == "first\n");
  std::this_thread::sleep_for(50ms);  // porticod waits for the next message
  REQUIRE(::kill(d.pid(), SIGSTOP) == 0);
  REQUIRE(c.send("last\n"));
  c.shutdown_write();
  std::this_thread::sleep_for(100ms);
  REQUIRE(::kill(d.pid(), SIGCONT) == 0);
  bool closed = false;
  CHECK(c.read_all(5s, &closed) == "last\n");
  CHECK(closed);
}

TEST_CASE("echo to a client that sends but never reads holds no memory of its own", "[handlers][echo]") {
  auto d = Daemon::start(service_config("echo"));
  {
    // Warm up: the first connection touches what every later one shares.
    Client warm(d.port());
    REQUIRE(exchange(warm.fd(), random_bytes(64 * 1024), 5s).size() == 64 * 1024);
  }
  const long before = rss_kib(d.pid());
  REQUIRE(before > 0);

  Client greedy(d.port());
  const std::size_t sent = send_until_full(greedy.fd(), 300ms, 256u << 20);
  // The daemon stopped reading once the client stopped taking the echo: the
  // bytes wait in kernel buffers, bounded, not in the daemon.
  CHECK(sent < (256u << 20));

  Client other(d.port());
  REQUIRE(other.send("still here"));
  CHECK(other.read_exactly(10, 2s) == "still here");

  const long after = rss_kib(d.pid());
  INFO("RSS " << before << " KiB -> " << after << " KiB after the client sent " << sent << " bytes");
  CHECK(after - before < 4 * 1024);
}
