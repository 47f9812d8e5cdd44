// What systemd sees: sd_notify messages on NOTIFY_SOCKET, sockets passed by
// socket activation, syslog priorities when stderr is the journal.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// A datagram socket standing in for systemd's notification socket.
class NotifySocket {
 public:
  explicit NotifySocket(const TempDir& dir) : path_((dir.path() / "notify").string()) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    chmod(path_.c_str(), 0777);
  }
  ~NotifySocket() { close(fd_); }
  const std::string& path() const { return path_; }

  // Sends datagrams to itself until its queue is full, as a reader far
  // behind leaves it; returns how many.
  int fill() {
    const int sender = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    int sent = 0;
    while (sent < 100000 && sendto(sender, "FILLER", 6, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 6) {
      ++sent;
    }
    close(sender);
    return sent;
  }

  // The next message that contains `what`, skipping others; empty on timeout.
  std::string next_with(const std::string& what, Millis timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      std::string message(buf, static_cast<std::size_t>(n));
      if (message.find(what) != std::string::npos) return message;
    }
    return {};
  }

 private:
  std::string path_;
  int fd_ = -1;
};

int listening_socket(std::uint16_t& port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  listen(fd, 16);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

TEST_CASE("Type=notify: READY with STATUS, RELOADING with MONOTONIC_USEC then READY, STOPPING", "[systemd]") {
  TempDir dir;
  NotifySocket notify(dir);
  auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\n", {.env = {{"NOTIFY_SOCKET", notify.path()}}});
  const std::string ready = notify.next_with("READY=1");
  CHECK_THAT(ready, Contains("STATUS=1 listener(s), 0 connection(s), 0 accepted, 0 refused"));

  d.signal(SIGHUP);
  const std::string reloading = notify.next_with("RELOADING=1");
  CHECK_THAT(reloading, Contains("MONOTONIC_USEC="));
  CHECK_THAT(notify.next_with("READY=1"), Contains("STATUS="));

  d.signal(SIGTERM);
  CHECK_THAT(notify.next_with("STOPPING=1"), StartsWith("STOPPING=1"));
  CHECK(d.wait_exit() == 0);
}

TEST_CASE("WATCHDOG_USEC makes porticod ping the watchdog", "[systemd]") {
  TempDir dir;
  NotifySocket notify(dir);
  auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\n",
                         {.env = {{"NOTIFY_SOCKET", notify.path()}, {"WATCHDOG_USEC", "200000"}}});
  CHECK_FALSE(notify.next_with("WATCHDOG=1", 2s).empty());
  CHECK_FALSE(notify.next_with("WATCHDOG=1", 2s).empty());
}

TEST_CASE("socket activation: a passed socket matching a listener is used, others are closed", "[systemd]") {
  std::uint16_t port = 0;
  std::uint16_t stray_port = 0;
  const int fd = listening_socket(port);
  const int stray = listening_socket(stray_port);
  const std::string address = "127.0.0.1:" + std::to_string(port);
  auto d = Daemon::start("[[listener]]\nname = \"act\"\naddress = \"" + address + "\"\n", {.listen_fds = {fd, stray}});
  close(fd);
  close(stray);
  CHECK(d.wait_log("listener \"act\": using the socket passed in (fd 3)"));
  CHECK(d.wait_log("closing inherited socket fd 4 (\"unknown\"): it matches no listener"));
  Client c(port);
  c.send("hi\n");
  CHECK(c.read_all(3s) == "Hello from server!\n");
}

TEST_CASE("when stderr is the journal, lines carry syslog priorities instead of timestamps", "[systemd]") {
  auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\n", {.journal_stream = true});
  CHECK_THAT(d.log(), Contains("<6>serving 127.0.0.1:0 on 127.0.0.1:"));
  d.rewrite_config("[[listener]]\nbad = 1\n");
  d.signal(SIGHUP);
  CHECK(d.wait_log("<3>reload failed"));
}

TEST_CASE("a notify socket whose reader is behind does not stop porticod serving; READY arrives once it reads",
          "[systemd]") {
  TempDir dir;
  NotifySocket notify(dir);
  REQUIRE(notify.fill() > 0);
  auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\nmode = \"on-connect\"\n",
                         {.env = {{"NOTIFY_SOCKET", notify.path()}}});
  // READY=1 cannot be queued: a blocking send would hold the loop until the
  // reader caught up, and no client would be served (8 s before).
  for (int i = 0; i < 3; ++i) {
    Client c(d.port());
    CHECK(c.read_all(2s) == "Hello from server!\n");
  }
  // The reader catches up: the message waiting is sent then, in order.
  CHECK_THAT(notify.next_with("READY=1"), StartsWith("READY=1\nSTATUS="));
}
