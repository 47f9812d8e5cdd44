// Listeners with proxy_protocol = true, as behind HAProxy or a cloud load
// balancer: the header's client is the one limits, rules and logs see.

#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using Catch::Matchers::Contains;

namespace {

const std::string config = R"(
[daemon]
log_level = "debug"
[[listener]]
name = "lb"
address = "127.0.0.1:0"
proxy_protocol = true
proxy_protocol_timeout = "500ms"
deny = ["203.0.113.0/24"]
)";

// A v2 header for TCP over IPv4 from src:sport to 192.0.2.1:443.
std::string v2_ipv4(const std::array<unsigned char, 4>& src, std::uint16_t sport, const std::string& tlvs = "") {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += '\x21';  // version 2, PROXY
  h += '\x11';  // AF_INET, STREAM
  const std::size_t len = 12 + tlvs.size();
  h += static_cast<char>(len >> 8);
  h += static_cast<char>(len & 0xff);
  for (auto b : src) h += static_cast<char>(b);
  h += std::string("\xc0\x00\x02\x01", 4);
  h += static_cast<char>(sport >> 8);
  h += static_cast<char>(sport & 0xff);
  h += std::string("\x01\xbb", 2);
  return h + tlvs;
}

std::string exchange(std::uint16_t port, const std::string& bytes, bool* closed = nullptr) {
  Client c(port);
  c.send(bytes);
  return c.read_all(3s, closed);
}

}  // namespace

TEST_CASE("a PROXY v1 header names the client and the data after it reaches the handler", "[proxy-protocol]") {
  auto d = Daemon::start(config);
  CHECK(exchange(d.port(), "PROXY TCP4 198.51.100.7 192.0.2.1 40000 443\r\nGET request 1\n") == "Hello from server!\n");
  CHECK(d.wait_log("[lb 198.51.100.7:40000] received \"GET request 1\\n\""));
}

TEST_CASE("a PROXY v1 header over IPv6 and UNKNOWN", "[proxy-protocol]") {
  auto d = Daemon::start(config);
  CHECK(exchange(d.port(), "PROXY TCP6 2001:db8::5 2001:db8::1 5555 443\r\nx") == "Hello from server!\n");
  CHECK(d.wait_log("[lb [2001:db8::5]:5555] received \"x\""));
  // UNKNOWN keeps the connection's own address.
  CHECK(exchange(d.port(), "PROXY UNKNOWN\r\ny") == "Hello from server!\n");
  CHECK(d.wait_log("[lb 127.0.0.1:"));
}

TEST_CASE("a PROXY v2 header, with TLVs, names the client", "[proxy-protocol]") {
  auto d = Daemon::start(config);
  const std::string tlv("\x04\x00\x03" "abc", 6);  // PP2_TYPE_NOOP
  CHECK(exchange(d.port(), v2_ipv4({198, 51, 100, 9}, 1234, tlv) + "hello") == "Hello from server!\n");
  CHECK(d.wait_log("[lb 198.51.100.9:1234] received \"hello\""));
}

TEST_CASE("allow/deny apply to the client the header names", "[proxy-protocol]") {
  auto d = Daemon::start(config);
  bool closed = false;
  CHECK(exchange(d.port(), "PROXY TCP4 203.0.113.5 192.0.2.1 1 2\r\nhi", &closed).empty());
  CHECK(closed);
  CHECK(d.wait_log("refused 203.0.113.5:1: denied by 203.0.113.0/24"));
}

TEST_CASE("a missing, malformed, oversized or truncated header closes the connection", "[proxy-protocol]") {
  auto d = Daemon::start(config);
  bool closed = false;
  SECTION("garbage instead of a header") {
    CHECK(exchange(d.port(), "GET / HTTP/1.0\r\n\r\n", &closed).empty());
    CHECK(closed);
    CHECK(d.wait_log("bad PROXY protocol header"));
  }
  SECTION("a v1 line longer than 107 bytes") {
    CHECK(exchange(d.port(), "PROXY TCP4 " + std::string(200, '1') + "\r\n", &closed).empty());
    CHECK(closed);
    CHECK(d.wait_log("bad PROXY protocol header"));
  }
  SECTION("a v1 header with a bad address") {
    CHECK(exchange(d.port(), "PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n", &closed).empty());
    CHECK(closed);
    CHECK(d.wait_log("bad PROXY protocol header"));
  }
  SECTION("a v2 header whose length exceeds the cap") {
    std::string h = v2_ipv4({198, 51, 100, 9}, 1);
    h[14] = '\x7f';  // length 0x7f0c
    CHECK(exchange(d.port(), h, &closed).empty());
    CHECK(closed);
    CHECK(d.wait_log("bad PROXY protocol header"));
  }
  SECTION("a truncated header times out") {
    const auto started = Clock::now();
    CHECK(exchange(d.port(), "PROXY TCP4 198.51.100.7", &closed).empty());
    CHECK(closed);
    CHECK(Clock::now() - started < 2s);
    CHECK(d.wait_log("no complete PROXY protocol header within the timeout"));
  }
  SECTION("no header at all, only silence") {
    // The client speaks first here, so the kernel holds a silent one for a
    // second (defer_accept "auto"); porticod's header timeout runs after.
    const auto started = Clock::now();
    Client c(d.port());
    CHECK(c.wait_closed(4s));
    CHECK(Clock::now() - started >= 1200ms);
    CHECK(d.wait_log("no complete PROXY protocol header within the timeout"));
  }
  // The listener still serves well-formed clients afterwards.
  CHECK(exchange(d.port(), "PROXY TCP4 198.51.100.7 192.0.2.1 1 2\r\nok") == "Hello from server!\n");
}

TEST_CASE("a header split across packets is still read", "[proxy-protocol]") {
  auto d = Daemon::start(config);
  Client c(d.port());
  c.send("PROXY TCP4 198.51.1");
  std::this_thread::sleep_for(50ms);
  c.send("00.8 192.0.2.1 7 8\r\nsplit");
  CHECK(c.read_all(3s) == "Hello from server!\n");
  CHECK(d.wait_log("[lb 198.51.100.8:7] received \"split\""));
}

TEST_CASE("clients that stop halfway through a PROXY header cost no CPU while they wait", "[proxy-protocol][cpu]") {
  auto d = Daemon::start(
      "[[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:0\"\nproxy_protocol = true\n"
      "proxy_protocol_timeout = \"10s\"\n");
  // Within the 1024 descriptors a process usually may open.
  constexpr int count = 600;
  std::vector<Client> stalled;
  stalled.reserve(count);
  for (int i = 0; i < count; ++i) {
    stalled.emplace_back(d.port());
    REQUIRE(stalled.back().send("PROXY TCP4 1.2.3.4 "));
  }
  // Accepted in order: once a later client is served, porticod holds them all.
  CHECK(exchange(d.port(), "PROXY TCP4 198.51.100.7 192.0.2.1 1 2\r\nlater") == "Hello from server!\n");
  // Waiting for the rest of a header is waiting for the client: nothing to
  // do until it sends. (Polling each of them every 10ms cost 110-140ms of
  // CPU a second here.)
  const Millis before = cpu_time(d.pid());
  std::this_thread::sleep_for(1s);
  const Millis used = cpu_time(d.pid()) - before;
  INFO("porticod used " << used.count() << "ms of CPU in 1s");
  CHECK(used < 50ms);
  // They are still waiting, within their timeout, and the listener serves.
  std::size_t answered = 0;
  for (auto& c : stalled) answered += !c.read_all(0ms).empty() || c.last_error() != ETIMEDOUT;
  CHECK(answered == 0);
  CHECK(exchange(d.port(), "PROXY TCP4 198.51.100.7 192.0.2.1 1 2\r\nagain") == "Hello from server!\n");
}

TEST_CASE("a header in parts, split anywhere, leaves every byte after it to the handler", "[proxy-protocol]") {
  auto d = Daemon::start(
      "[[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\nproxy_protocol = true\n");
  // Data that looks like more header: CR LF, a PROXY line, the v2 signature.
  std::string payload = "\r\nPROXY TCP4 203.0.113.1 192.0.2.1 1 2\r\n" + v2_ipv4({203, 0, 113, 2}, 3);
  for (int i = 0; payload.size() < 64 * 1024; ++i) payload += static_cast<char>((i * 131 + 7) & 0xff);
  const auto send_in_parts = [&](const std::vector<std::string>& parts) {
    Client c(d.port());
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) std::this_thread::sleep_for(50ms);
      REQUIRE(c.send(parts[i]));
    }
    c.shutdown_write();
    bool closed = false;
    const std::string echoed = c.read_all(5s, &closed);
    CHECK(closed);
    CHECK(echoed.size() == payload.size());
    CHECK(echoed == payload);
  };
  SECTION("v1, cut inside an address and between CR and LF") {
    send_in_parts({"PROXY TCP4 198.51.1", "00.8 192.0.2.1 7 8\r", "\n" + payload});
  }
  SECTION("v1, the header alone first") {
    send_in_parts({"PROXY TCP4 198.51.100.8 192.0.2.1 7 8\r\n", payload});
  }
  SECTION("v2, cut inside the signature and inside the addresses") {
    const std::string header = v2_ipv4({198, 51, 100, 9}, 1234);
    send_in_parts({header.substr(0, 5), header.substr(5, 15), header.substr(20) + payload});
  }
}
