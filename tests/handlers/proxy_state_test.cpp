// What the proxy handler reports of its upstreams (status lines, metrics,
// state-change log lines) and hands over on a reload, driven in-process:
// the handler built from a parsed config, started on an io_context of the
// test's own, checking real sockets on 127.0.0.1.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <portico/config.hpp>
#include <portico/handler.hpp>
#include <portico/metrics.hpp>
#include <portico/registry.hpp>

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

// A socket listening on 127.0.0.1 that nobody accepts from: the kernel
// completes handshakes for it (up to the backlog), so a connect succeeds.
struct Listening {
  Listening() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), len) == 0);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    REQUIRE(listen(fd, 64) == 0);
    port = ntohs(a.sin_port);
  }
  ~Listening() {
    if (fd >= 0) close(fd);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  int fd = -1;
  std::uint16_t port = 0;
};

// A port that refuses: bound, then closed.
std::string refusing_address() {
  Listening l;
  return l.address();
}

struct Sink final : spdlog::sinks::base_sink<std::mutex> {
  std::string text;
  void sink_it_(const spdlog::details::log_msg& msg) override {
    text.append(msg.payload.data(), msg.payload.size());
    text += '\n';
  }
  void flush_() override {}
};

std::unique_ptr<portico::Handler> build(const portico::Registry& registry, const std::string& options) {
  const std::string text = "[[listener]]\nname = \"lb\"\naddress = \"127.0.0.1:0\"\nhandler = \"proxy\"\n" + options;
  auto loaded = portico::parse_config(text, "<test>", registry);
  INFO(loaded.errors.to_string());
  REQUIRE(loaded.config);
  const auto& listener = loaded.config->listeners.at(0);
  return registry.find("proxy")->create(listener.options);
}

std::string metrics(const portico::Handler& handler) {
  portico::MetricsWriter out;
  handler.write_metrics(out, "lb");
  return out.text();
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace

TEST_CASE("proxy status lines, metrics and log lines follow its health checks", "[handlers][proxy][health]") {
  portico::Registry registry;
  portico::register_builtin_handlers(registry);
  Listening up;
  const std::string down = refusing_address();
  // Before the handler: its checks' sockets and timers must go first.
  boost::asio::io_context io(1);
  auto handler = build(registry, "upstream = [\"" + up.address() + "\", { address = \"" + down +
                                     "\", weight = 2 }]\nhealth_check_interval = \"20ms\"\nhealth_check_fall = 2\n");
  auto sink = std::make_shared<Sink>();
  auto logger = std::make_shared<spdlog::logger>("test", sink);

  // Before any check: both taken as up.
  CHECK(joined(handler->status()) == "upstream " + up.address() + ": up; 0 active, 0 connects, 0 failed\n" +
                                         "upstream " + down + ": up, weight 2; 0 active, 0 connects, 0 failed\n");
  handler->start(portico::HandlerContext{io.get_executor(), logger, "lb"});
  io.run_for(300ms);
  CHECK_THAT(sink->text, Contains("listener \"lb\": upstream " + down + " down: 2 checks failed (connection refused)"));
  CHECK(joined(handler->status()) ==
        "upstream " + up.address() + ": up; 0 active, 0 connects, 0 failed\n" + "upstream " + down +
            ": down (checks failing: connection refused), weight 2; 0 active, 0 connects, 0 failed\n");
  const std::string m = metrics(*handler);
  CHECK_THAT(m, Contains("portico_upstream_up{listener=\"lb\",upstream=\"" + up.address() + "\"} 1\n"));
  CHECK_THAT(m, Contains("portico_upstream_up{listener=\"lb\",upstream=\"" + down + "\"} 0\n"));
  CHECK_THAT(m, Contains("# TYPE portico_upstream_connects_total counter\n"));
  CHECK_THAT(m, Contains("portico_upstream_connect_failures_total{listener=\"lb\",upstream=\"" + down + "\"} 0\n"));
  CHECK_THAT(m, Contains("portico_upstream_active_connections{listener=\"lb\",upstream=\"" + up.address() + "\"} 0\n"));
  CHECK_THAT(m, Contains("portico_proxy_no_upstream_total{listener=\"lb\",reason=\"all_down\"} 0\n"));

  SECTION("a handler built by a reload takes the state over, and the old one stops checking") {
    const std::size_t logged = sink->text.size();
    auto next = build(registry, "upstream = [\"" + down + "\"]\nhealth_check_interval = \"20ms\"\n"
                                "health_check_fall = 2\n");
    next->take_over(*handler);
    next->start(portico::HandlerContext{io.get_executor(), logger, "lb"});
    io.restart();
    io.run_for(200ms);
    // Still down, known from before: not learnt again.
    CHECK(joined(next->status()) == "upstream " + down + ": down (checks failing: connection refused); 0 active, 0 "
                                                         "connects, 0 failed\n");
    CHECK(sink->text.find("down:", logged) == std::string::npos);
    // The old handler's checks ended: destroying it now changes nothing, and
    // the io_context runs dry only once the new one is gone too.
    handler.reset();
    next.reset();
    io.restart();
    io.run_for(2s);
    CHECK(io.stopped());
  }

  SECTION("destroying the handler ends its checks") {
    handler.reset();
    io.restart();
    // Nothing is left to run: run_for returns at once, not after 2s.
    const auto started = std::chrono::steady_clock::now();
    io.run_for(2s);
    CHECK(std::chrono::steady_clock::now() - started < 1s);
  }
}
