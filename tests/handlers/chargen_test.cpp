// The chargen handler (RFC 864), driven through the real porticod over
// 127.0.0.1.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "handlers/service_support.hpp"
#include "support/daemon.hpp"

using namespace portico::test;

namespace {

constexpr std::size_t line_size = 74;  // 72 characters and CRLF

// Line i of RFC 864's pattern: 72 characters from offset i (mod 95) of the
// cyclic sequence of printable ASCII, ' ' (32) to '~' (126).
std::string expected_line(std::size_t i) {
  std::string line;
  for (std::size_t j = 0; j < 72; ++j) line += static_cast<char>(32 + (i + j) % 95);
  return line + "\r\n";
}

// A client whose receive buffer is small (SO_RCVBUF set before connecting,
// so that the window it offers stays small): what it does not read stays in
// the server's send queue.
Client small_window_client(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  Client c = Client::adopt(fd);
  const int size = 4096;
  REQUIRE(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) == 0);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&server), sizeof server) == 0);
  REQUIRE(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
  return c;
}

std::uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// The bytes queued for sending (not yet acknowledged) on the TCP socket of
// 127.0.0.1 from port `local` to port `remote`, from /proc/net/tcp; -1 when
// there is no such socket.
long send_queue(std::uint16_t local, std::uint16_t remote) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // the column names
  // Addresses are the in_addr's bytes printed as a host integer.
  const unsigned loopback = htonl(INADDR_LOOPBACK);
  char want_local[32];
  char want_remote[32];
  std::snprintf(want_local, sizeof want_local, "%08X:%04X", loopback, local);
  std::snprintf(want_remote, sizeof want_remote, "%08X:%04X", loopback, remote);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local_address, remote_address, state, queues;
    fields >> slot >> local_address >> remote_address >> state >> queues;
    if (local_address == want_local && remote_address == want_remote) {
      return std::stol(queues.substr(0, queues.find(':')), nullptr, 16);
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("chargen's first lines are the RFC 864 pattern", "[handlers][chargen]") {
  auto d = Daemon::start(service_config("chargen"));
  Client c(d.port());
  const std::string got = c.read_exactly(3 * line_size, 5s);
  REQUIRE(got.size() == 3 * line_size);
  CHECK(got.substr(0, line_size) == " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n");
  CHECK(got.substr(line_size, line_size) ==
        "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n");
  CHECK(got.substr(2 * line_size) == expected_line(2));
}

TEST_CASE("chargen with line_limit sends exactly that many lines, wrapping after 95, then closes",
          "[handlers][chargen]") {
  auto d = Daemon::start(service_config("chargen", "line_limit = 96\n"));
  Client c(d.port());
  bool closed = false;
  const std::string got = c.read_all(5s, &closed);
  CHECK(closed);
  REQUIRE(got.size() == 96 * line_size);
  for (std::size_t i = 0; i < 96; ++i) {
    INFO("line " << i);
    CHECK(got.substr(i * line_size, line_size) == expected_line(i));
  }
  CHECK(got.substr(95 * line_size) == got.substr(0, line_size));
  CHECK(d.wait_log("sent 96 lines (7104 bytes), the line limit; closing the connection"));
}

TEST_CASE("chargen streams the pattern until the client closes, and then stops", "[handlers][chargen]") {
  auto d = Daemon::start(service_config("chargen"));
  {
    Client c(d.port());
    const std::size_t lines = 20000;  // about 1.4 MiB, many times round the cycle
    const std::string got = c.read_exactly(lines * line_size, 10s);
    REQUIRE(got.size() == lines * line_size);
    bool all_match = true;
    for (std::size_t i = 0; i < lines && all_match; ++i) {
      all_match = got.compare(i * line_size, line_size, expected_line(i)) == 0;
    }
    CHECK(all_match);
  }
  // The next write after the close fails, and the handler ends.
  CHECK(d.wait_log("write failed: ", 5s));
}

TEST_CASE("a chargen client that never reads costs the daemon neither memory nor its other clients",
          "[handlers][chargen]") {
  auto d = Daemon::start(service_config("chargen"));
  {
    Client warm(d.port());
    REQUIRE(warm.read_exactly(100 * line_size, 5s).size() == 100 * line_size);
  }
  const long before = rss_kib(d.pid());
  REQUIRE(before > 0);

  Client idle(d.port());  // connected, never reads
  const auto until = Clock::now() + 2s;
  while (Clock::now() < until) {
    Client other(d.port());
    const auto started = Clock::now();
    CHECK(other.read_exactly(3 * line_size, 2s) == expected_line(0) + expected_line(1) + expected_line(2));
    CHECK(Clock::now() - started < 1s);
    std::this_thread::sleep_for(200ms);
  }

  const long after = rss_kib(d.pid());
  INFO("RSS " << before << " KiB -> " << after << " KiB");
  CHECK(after - before < 4 * 1024);
}

TEST_CASE("chargen is paced by its client's reading: a client that does not read holds little in the kernel",
          "[handlers][chargen]") {
  constexpr std::size_t limit = 100000;  // 7.4 MB
  auto d = Daemon::start(service_config("chargen", "line_limit = " + std::to_string(limit) + "\n"));
  Client c = small_window_client(d.port());
  const std::uint16_t client_port = local_port(c.fd());
  // The queue fills within milliseconds; look at it for half a second.
  long most = 0;
  for (auto until = Clock::now() + 500ms; Clock::now() < until;) {
    const long queued = send_queue(d.port(), client_port);
    REQUIRE(queued >= 0);
    most = std::max(most, queued);
    std::this_thread::sleep_for(50ms);
  }
  INFO("porticod's send queue to the client held up to " << most << " bytes");
  CHECK(most > 0);
  CHECK(most < 256 * 1024);

  // Then everything comes, in order, and the connection closes.
  bool closed = false;
  const std::string got = c.read_all(30s, &closed);
  CHECK(closed);
  REQUIRE(got.size() == limit * line_size);
  std::string cycle;
  for (std::size_t i = 0; i < 95; ++i) cycle += expected_line(i);
  std::size_t wrong = 0;
  for (std::size_t at = 0; at < got.size(); at += cycle.size()) {
    wrong += got.compare(at, cycle.size(), cycle, 0, std::min(cycle.size(), got.size() - at)) != 0;
  }
  CHECK(wrong == 0);
}
