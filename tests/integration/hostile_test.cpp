// Clients that misbehave: the daemon keeps running, memory stays bounded,
// other clients are served.

#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;

namespace {

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  }
  return -1;
}

bool served(std::uint16_t port) {
  Client c(port);
  c.send("hi\n");
  return c.read_all(3s) == "Hello from server!\n";
}

void reset(Client& c) {
  // SO_LINGER with a zero timeout turns close() into a RST.
  linger l{1, 0};
  setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

}  // namespace

TEST_CASE("10 MB of garbage to greeting costs nothing: it reads 100 bytes and answers", "[hostile]") {
  auto d = Daemon::start("[[listener]]\naddress = \"127.0.0.1:0\"\n");
  const long before = rss_kib(d.pid());
  {
    Client c(d.port());
    // The server closes after its answer; the rest of the garbage then
    // fails to send, which is the point.
    c.send(std::string(10 * 1024 * 1024, '\xff'));
  }
  CHECK(served(d.port()));
  CHECK(rss_kib(d.pid()) - before < 4096);
}

TEST_CASE("clients that reset mid-conversation leave the daemon serving", "[hostile]") {
  auto d = Daemon::start(
      "[[listener]]\nname = \"g\"\naddress = \"127.0.0.1:0\"\n"
      "[[listener]]\nname = \"e\"\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\n",
      {.listeners = 2});
  for (int i = 0; i < 50; ++i) {
    Client g(d.port("g"));
    reset(g);
    Client e(d.port("e"));
    e.send(std::string(256 * 1024, 'e'));  // the echo is still writing back
    reset(e);
  }
  CHECK(d.running());
  CHECK(served(d.port("g")));
}

TEST_CASE("a chargen client that never reads does not grow the daemon", "[hostile]") {
  auto d = Daemon::start(
      "[[listener]]\nname = \"c\"\naddress = \"127.0.0.1:0\"\nhandler = \"chargen\"\n"
      "[[listener]]\nname = \"g\"\naddress = \"127.0.0.1:0\"\n",
      {.listeners = 2});
  std::vector<Client> stalled;
  for (int i = 0; i < 20; ++i) stalled.emplace_back(d.port("c"));
  std::this_thread::sleep_for(300ms);
  const long before = rss_kib(d.pid());
  std::this_thread::sleep_for(1s);
  CHECK(rss_kib(d.pid()) - before < 1024);
  CHECK(served(d.port("g")));
}
