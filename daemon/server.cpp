#include <portico/server.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "daemon/listener.hpp"

namespace portico {

namespace asio = boost::asio;

struct Server::Impl {
  Impl(asio::io_context& io, const Registry& registry, std::shared_ptr<spdlog::logger> logger)
      : io(io), registry(registry), logger(std::move(logger)), counters(std::make_shared<ServerCounters>()),
        grace_timer(io) {}

  void check_drained() {
    if (!draining || counters->connections != 0 || !done) return;
    grace_timer.cancel();
    // Run `done` outside the connection's coroutine that noticed the end.
    asio::post(io, std::exchange(done, nullptr));
  }

  void close_all() {
    for (auto& listener : listeners) listener->close_connections();
  }

  asio::io_context& io;
  const Registry& registry;
  std::shared_ptr<spdlog::logger> logger;
  std::shared_ptr<ServerCounters> counters;
  std::vector<boost::intrusive_ptr<Listener>> listeners;
  asio::steady_timer grace_timer;
  std::function<void()> done;
  bool draining = false;
};

Server::Server(asio::io_context& io, const Registry& registry, std::shared_ptr<spdlog::logger> logger)
    : impl_(std::make_unique<Impl>(io, registry, std::move(logger))) {
  impl_->counters->on_connection_end = [impl = impl_.get()] { impl->check_drained(); };
}

Server::~Server() {
  impl_->counters->on_connection_end = nullptr;
  for (auto& listener : impl_->listeners) {
    listener->stop();
    listener->close_connections();
  }
}

void Server::start(const Config& config) {
  std::vector<boost::intrusive_ptr<Listener>> opened;
  for (const auto& listener_config : config.listeners) {
    const HandlerType* type = impl_->registry.find(listener_config.handler);
    if (type == nullptr) {
      throw StartError(fmt::format("listener \"{}\": unknown handler type \"{}\"", listener_config.name,
                                   listener_config.handler));
    }
    std::unique_ptr<Handler> handler;
    try {
      handler = type->create(listener_config.options);
    } catch (const std::exception& e) {
      throw StartError(fmt::format("listener \"{}\": cannot create handler \"{}\": {}", listener_config.name,
                                   listener_config.handler, e.what()));
    }
    opened.emplace_back(new Listener(impl_->io, listener_config, std::move(handler), impl_->logger, impl_->counters));
    // On a throw, `opened` closes every socket bound so far.
    opened.back()->bind();
  }
  for (auto& listener : opened) {
    listener->start();
    impl_->listeners.push_back(std::move(listener));
  }
}

std::vector<Server::ListenerInfo> Server::listeners() const {
  std::vector<ListenerInfo> out;
  for (const auto& listener : impl_->listeners) {
    out.push_back({listener->config().name, listener->bound_address(), listener->config().handler});
  }
  return out;
}

std::size_t Server::connection_count() const { return impl_->counters->connections; }

void Server::shutdown(Duration grace, std::function<void()> done) {
  if (impl_->draining) {
    impl_->close_all();
    return;
  }
  impl_->draining = true;
  impl_->done = std::move(done);
  for (auto& listener : impl_->listeners) listener->stop();
  if (impl_->counters->connections == 0) {
    impl_->check_drained();
    return;
  }
  impl_->grace_timer.expires_after(grace);
  impl_->grace_timer.async_wait([impl = impl_.get()](boost::system::error_code ec) {
    if (ec) return;
    impl->logger->warn("closing {} connection(s) still open after the shutdown timeout",
                       impl->counters->connections);
    impl->close_all();
  });
}

}  // namespace portico
