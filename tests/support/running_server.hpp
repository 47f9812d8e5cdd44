#pragma once
// An in-process portico::Server on an io_context of its own thread, for unit
// tests of the library (handlers registered by the test itself, plugins).

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/logger.h>

#include <portico/config.hpp>
#include <portico/registry.hpp>
#include <portico/server.hpp>

namespace portico::test {

// Serves `config` until destroyed.
class RunningServer {
 public:
  RunningServer(const portico::Registry& registry, const portico::Config& config)
      : server_(io_, registry, std::make_shared<spdlog::logger>("test")) {
    server_.start(config);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~RunningServer() {
    boost::asio::post(io_, [this] { server_.shutdown(portico::Duration(0), [this] { io_.stop(); }); });
    thread_.join();
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  // The first listener's port. Call before the destructor only; the listener
  // list does not change.
  std::uint16_t port() const {
    const std::string address = server_.listeners().at(0).address;
    return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  }

 private:
  boost::asio::io_context io_{1};
  portico::Server server_;
  std::thread thread_;
};

}  // namespace portico::test
