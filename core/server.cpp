#include <portico/server.hpp>

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "core/listener.hpp"

namespace portico {

namespace asio = boost::asio;
using ListenerPtr = boost::intrusive_ptr<Listener>;

struct Server::Impl {
  Impl(asio::io_context& io, const Registry& registry, std::shared_ptr<spdlog::logger> logger)
      : io(io), registry(registry), logger(std::move(logger)), counters(std::make_shared<ServerCounters>()),
        grace_timer(io) {}

  // A connection ended, or a listener finished taking its queue.
  void on_change() {
    // A server-wide cap frees a slot for every listener, not only the one
    // whose connection ended.
    if (counters->max_connections != 0) {
      for (auto& listener : listeners) listener->resume();
    }
    std::erase_if(retired, [](const ListenerPtr& l) { return l->active() == 0 && !l->accepting(); });
    if (!draining || counters->connections != 0 || counters->draining_listeners != 0 || !done) return;
    grace_timer.cancel();
    // Run `done` outside the connection's coroutine that noticed the end.
    asio::post(io, std::exchange(done, nullptr));
  }

  void close_all() {
    for (auto* group : {&listeners, &retired}) {
      for (auto& listener : *group) {
        listener->stop();
        listener->close_connections();
      }
    }
  }

  Result<ServicePtr> make_service(const ListenerConfig& config) {
    const HandlerType* type = registry.find(config.handler);
    if (type == nullptr) return fail("listener \"{}\": unknown handler type \"{}\"", config.name, config.handler);
    try {
      return ServicePtr(new Service(config, type->create(config.options)));
    } catch (const std::exception& e) {
      return fail("listener \"{}\": cannot create handler \"{}\": {}", config.name, config.handler, e.what());
    }
  }

  // Stops a listener that a reload removed: it takes what the kernel holds
  // for it, then its connections may finish until `grace` has passed.
  void retire(ListenerPtr listener, Duration grace) {
    listener->stop_gracefully(grace);
    auto timer = std::make_shared<asio::steady_timer>(io, grace);
    timer->async_wait([timer, listener, log = logger](boost::system::error_code ec) {
      if (ec) return;
      listener->stop();
      if (listener->active() == 0) return;
      log->warn("listener \"{}\": closing {} connection(s) still open after the shutdown timeout",
                listener->config().name, listener->active());
      listener->close_connections();
    });
    retired.push_back(std::move(listener));
  }

  asio::io_context& io;
  const Registry& registry;
  std::shared_ptr<spdlog::logger> logger;
  std::shared_ptr<ServerCounters> counters;
  std::vector<ListenerPtr> listeners;
  std::vector<ListenerPtr> retired;  // removed by a reload, still draining
  asio::steady_timer grace_timer;
  std::function<void()> done;
  bool draining = false;
};

Server::Server(asio::io_context& io, const Registry& registry, std::shared_ptr<spdlog::logger> logger)
    : impl_(std::make_unique<Impl>(io, registry, std::move(logger))) {
  impl_->counters->on_change = [impl = impl_.get()] { impl->on_change(); };
}

Server::~Server() {
  impl_->counters->on_change = nullptr;
  impl_->close_all();
}

Result<void> Server::start(const Config& config, const std::vector<int>& inherited_fds) {
  std::vector<ListenerPtr> opened;
  std::vector<bool> used(inherited_fds.size(), false);
  for (const auto& listener_config : config.listeners) {
    auto service = impl_->make_service(listener_config);
    if (!service) return service.error();
    opened.emplace_back(new Listener(impl_->io, *service, impl_->logger, impl_->counters));
    std::optional<int> inherited;
    for (std::size_t i = 0; i < inherited_fds.size(); ++i) {
      if (!used[i] && socket_matches(inherited_fds[i], listener_config.address)) {
        used[i] = true;
        inherited = inherited_fds[i];
        break;
      }
    }
    // On a failure, `opened` closes every socket bound so far.
    if (auto bound = opened.back()->bind(inherited); !bound) return bound;
    if (inherited) {
      impl_->logger->info("listener \"{}\": using the socket passed by systemd (fd {})", listener_config.name,
                          *inherited);
    }
  }
  for (std::size_t i = 0; i < inherited_fds.size(); ++i) {
    if (used[i]) continue;
    impl_->logger->warn("closing inherited socket fd {}: it matches no listener's address", inherited_fds[i]);
    ::close(inherited_fds[i]);
  }
  impl_->counters->max_connections = config.daemon.max_connections;
  for (auto& listener : opened) {
    listener->start();
    impl_->listeners.push_back(std::move(listener));
  }
  return {};
}

Result<std::string> Server::reload(const Config& config) {
  struct Plan {
    ServicePtr service;
    ListenerPtr existing;
    ListenerPtr fresh;
  };
  std::vector<Plan> plans;
  std::vector<bool> kept(impl_->listeners.size(), false);
  // Build and bind everything new first: any failure here leaves the
  // running configuration untouched (the new sockets close with `plans`).
  for (const auto& listener_config : config.listeners) {
    auto service = impl_->make_service(listener_config);
    if (!service) return service.error();
    Plan plan{*service, nullptr, nullptr};
    for (std::size_t i = 0; i < impl_->listeners.size(); ++i) {
      if (!kept[i] && impl_->listeners[i]->config().address == listener_config.address) {
        kept[i] = true;
        plan.existing = impl_->listeners[i];
        break;
      }
    }
    if (!plan.existing) {
      plan.fresh = new Listener(impl_->io, plan.service, impl_->logger, impl_->counters);
      if (auto bound = plan.fresh->bind(); !bound) return bound.error();
    }
    plans.push_back(std::move(plan));
  }

  std::size_t added = 0;
  std::size_t removed = 0;
  for (std::size_t i = 0; i < impl_->listeners.size(); ++i) {
    if (!kept[i]) {
      impl_->logger->info("listener \"{}\" on {} removed: draining {} connection(s)",
                          impl_->listeners[i]->config().name, impl_->listeners[i]->bound_address(),
                          impl_->listeners[i]->active());
      impl_->retire(impl_->listeners[i], config.daemon.shutdown_timeout);
      ++removed;
    }
  }
  std::vector<ListenerPtr> next;
  for (auto& plan : plans) {
    if (plan.existing) {
      const auto& before = plan.existing->config();
      if (before.reuse_port != plan.service->config.reuse_port || before.v6only != plan.service->config.v6only ||
          before.socket_mode != plan.service->config.socket_mode) {
        impl_->logger->warn("listener \"{}\": reuse_port, v6only and socket_mode apply only to a new socket; "
                            "restart porticod to change them",
                            plan.service->config.name);
      }
      const std::string name = plan.service->config.name;
      if (auto updated = plan.existing->update(plan.service); !updated) {
        // The socket keeps serving with its previous options.
        impl_->logger->error("{}; listener \"{}\" keeps its previous settings", updated.error().message(), name);
      }
      next.push_back(plan.existing);
    } else {
      plan.fresh->start();
      impl_->logger->info("serving {} on {} ({})", plan.service->config.name, plan.fresh->bound_address(),
                          plan.service->config.handler);
      next.push_back(plan.fresh);
      ++added;
    }
  }
  impl_->listeners = std::move(next);
  impl_->counters->max_connections = config.daemon.max_connections;
  for (auto& listener : impl_->listeners) listener->resume();
  return fmt::format("{} listener(s) kept, {} added, {} removed", impl_->listeners.size() - added, added, removed);
}

std::vector<Server::ListenerInfo> Server::listeners() const {
  std::vector<ListenerInfo> out;
  for (const auto& listener : impl_->listeners) {
    out.push_back({listener->config().name, listener->bound_address(), listener->config().handler});
  }
  return out;
}

std::size_t Server::connection_count() const { return impl_->counters->connections; }

std::string Server::status() const {
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;
  for (const auto* group : {&impl_->listeners, &impl_->retired}) {
    for (const auto& listener : *group) {
      const auto& s = listener->stats();
      accepted += s.accepted;
      refused += s.refused_access + s.refused_limit + s.refused_per_source + s.refused_rate + s.refused_proxy_header;
    }
  }
  return fmt::format("{} listener(s), {} connection(s), {} accepted, {} refused", impl_->listeners.size(),
                     impl_->counters->connections, accepted, refused);
}

void Server::shutdown(Duration grace, std::function<void()> done) {
  if (impl_->draining) {
    impl_->close_all();
    return;
  }
  impl_->draining = true;
  impl_->done = std::move(done);
  for (auto& listener : impl_->listeners) listener->stop_gracefully(grace);
  impl_->grace_timer.expires_after(grace);
  impl_->grace_timer.async_wait([impl = impl_.get()](boost::system::error_code ec) {
    if (ec) return;
    for (auto* group : {&impl->listeners, &impl->retired}) {
      for (auto& listener : *group) listener->stop();
    }
    if (impl->counters->connections == 0) return;
    impl->logger->warn("closing {} connection(s) still open after the shutdown timeout",
                       impl->counters->connections);
    impl->close_all();
  });
  impl_->on_change();
}

}  // namespace portico
