#pragma once
// For the tests of handler authors: a real portico server on 127.0.0.1, in
// the test's own process, serving handler types the test registered (or a
// plugin it loaded), and a blocking client to talk to it.
//
//   portico::Registry registry;
//   register_handlers(registry);                 // the plugin's own function
//   portico::testing::RunningServer server(registry, R"(
//     [[listener]]
//     address = "127.0.0.1:0"
//     handler = "hello"
//   )");
//   assert(portico::testing::talk(server.port(), "hi\n") == "Hello, world!\n");
//
// Header-only; link portico::portico. Everything here is bounded in time.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <portico/config.hpp>
#include <portico/registry.hpp>
#include <portico/server.hpp>

namespace portico::testing {

// A server running `config` on an io_context of its own thread until
// destroyed; the destructor closes every connection at once. The registry
// must outlive it.
class RunningServer {
 public:
  // Throws std::runtime_error with every config error (FILE:LINE:COL) or
  // the reason the server could not start.
  RunningServer(const Registry& registry, std::string_view config_text)
      : RunningServer(registry, parsed(registry, config_text)) {}

  RunningServer(const Registry& registry, const Config& config)
      : sink_(std::make_shared<Sink>()),
        logger_(std::make_shared<spdlog::logger>("test", sink_)),
        server_(io_, registry, logger_) {
    if (auto started = server_.start(config); !started) throw std::runtime_error(started.error().message());
    listeners_ = server_.listeners();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~RunningServer() {
    boost::asio::post(io_, [this] {
      // Twice: the second call closes at once what the first let drain.
      server_.shutdown(Duration(0), [this] { io_.stop(); });
      server_.shutdown(Duration(0), [] {});
    });
    thread_.join();
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  // The port of the listener called `name` (the first one when empty), as
  // bound: the real one when the config asked for port 0.
  std::uint16_t port(std::string_view name = {}) const {
    for (const auto& listener : listeners_) {
      if (!name.empty() && listener.name != name) continue;
      const auto colon = listener.address.rfind(':');
      if (colon == std::string::npos) break;
      return static_cast<std::uint16_t>(std::stoi(listener.address.substr(colon + 1)));
    }
    throw std::runtime_error("no IP listener named \"" + std::string(name) + "\"");
  }

  // Everything the server logged so far, a line each (at spdlog's default
  // level, info; set_log_level changes it).
  std::string log() const {
    std::lock_guard lock(sink_->mutex_);
    return sink_->text;
  }
  void set_log_level(spdlog::level::level_enum level) { logger_->set_level(level); }

 private:
  struct Sink final : spdlog::sinks::base_sink<std::mutex> {
    std::string text;
    void sink_it_(const spdlog::details::log_msg& msg) override {
      text.append(msg.payload.data(), msg.payload.size());
      text += '\n';
    }
    void flush_() override {}
    friend class RunningServer;
  };

  static Config parsed(const Registry& registry, std::string_view text) {
    auto loaded = parse_config(text, "<test>", registry);
    if (!loaded.config) throw std::runtime_error(loaded.errors.to_string());
    return *loaded.config;
  }
  boost::asio::io_context io_{1};
  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::logger> logger_;
  Server server_;
  std::vector<Server::ListenerInfo> listeners_;
  std::thread thread_;
};

// Connects to 127.0.0.1:`port`, sends `request` (then, with
// `close_sending`, shuts down the sending side), and returns everything the
// server sent until it closed the connection or `timeout` passed.
inline std::string talk(std::uint16_t port, std::string_view request,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5), bool close_sending = false) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto left = [&] {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::int64_t>(0, ms.count()));
  };
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  const std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  for (std::size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) return {};
    sent += static_cast<std::size_t>(n);
  }
  if (close_sending) ::shutdown(fd, SHUT_WR);
  std::string reply;
  char chunk[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left()) <= 0) break;
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    reply.append(chunk, static_cast<std::size_t>(n));
  }
  return reply;
}

}  // namespace portico::testing
