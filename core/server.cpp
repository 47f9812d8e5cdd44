#include <portico/server.hpp>

#include <unistd.h>

#include <chrono>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include <portico/metrics.hpp>
#include <portico/version.hpp>

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
    std::shared_ptr<const TlsServerContext> tls;
    if (config.tls) {
      auto loaded = TlsServerContext::load(*config.tls);
      if (!loaded) return fail("listener \"{}\": {}", config.name, loaded.error().message());
      tls = std::move(*loaded);
    }
    try {
      return ServicePtr(new Service(config, type->create(config.options), std::move(tls)));
    } catch (const std::exception& e) {
      return fail("listener \"{}\": cannot create handler \"{}\": {}", config.name, config.handler, e.what());
    }
  }

  // Lets a handler start what it runs beside its connections, once it
  // serves; after a reload it first takes over from the handler it
  // replaces, when that one is of the same type.
  void begin(Service& service, Service* previous) {
    if (previous != nullptr && previous->config.handler == service.config.handler) {
      service.handler->take_over(*previous->handler);
    }
    service.handler->start(HandlerContext{io.get_executor(), logger, service.config.name});
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
  std::vector<std::string> unused_inherited;
  bool keep_socket_files = false;
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_failed = 0;
  std::chrono::system_clock::time_point last_config = std::chrono::system_clock::now();

  Listener* find(std::string_view name) const {
    for (const auto& listener : listeners) {
      if (listener->config().name == name) return listener.get();
    }
    return nullptr;
  }
};

Server::Server(asio::io_context& io, const Registry& registry, std::shared_ptr<spdlog::logger> logger)
    : impl_(std::make_unique<Impl>(io, registry, std::move(logger))) {
  impl_->counters->on_change = [impl = impl_.get()] { impl->on_change(); };
  impl_->counters->server = this;
}

Server::~Server() {
  impl_->counters->on_change = nullptr;
  impl_->counters->server = nullptr;
  impl_->counters->observer = nullptr;
  impl_->close_all();
}

std::string Server::socket_name(const ListenerConfig& listener) {
  // FNV-1a: stable across builds and versions, which std::hash is not.
  std::uint64_t h = 14695981039346656037ull;
  for (const unsigned char c : listener.name) h = (h ^ c) * 1099511628211ull;
  return fmt::format("portico-{:016x}", h);
}

Result<void> Server::start(const Config& config, const std::vector<InheritedSocket>& inherited) {
  std::vector<ListenerPtr> opened;
  std::vector<bool> used(inherited.size(), false);
  // The socket that carries a listener's name and is bound to its address;
  // else one bound to its address (socket activation names sockets after
  // its units, and a listener may have been renamed). A listener on port 0
  // takes only the socket of its name: any port of its host matches, so the
  // address alone cannot tell whose socket it is.
  const auto find = [&](const ListenerConfig& listener) -> std::optional<std::size_t> {
    const std::string name = socket_name(listener);
    const bool any_port = listener.address.is_ip() && listener.address.port == 0;
    std::optional<std::size_t> by_address;
    for (std::size_t i = 0; i < inherited.size(); ++i) {
      if (used[i] || !socket_matches(inherited[i].fd, listener.address)) continue;
      if (inherited[i].name == name) return i;
      if (!by_address && !any_port) by_address = i;
    }
    return by_address;
  };
  for (const auto& listener_config : config.listeners) {
    auto service = impl_->make_service(listener_config);
    if (!service) return service.error();
    opened.emplace_back(new Listener(impl_->io, *service, impl_->logger, impl_->counters));
    std::optional<int> fd;
    if (const auto i = find(listener_config)) {
      used[*i] = true;
      fd = inherited[*i].fd;
    }
    // On a failure, `opened` closes every socket bound so far.
    if (auto bound = opened.back()->bind(fd); !bound) return bound;
    if (fd) {
      impl_->logger->info("listener \"{}\": using the socket passed in (fd {})", listener_config.name, *fd);
    }
  }
  for (std::size_t i = 0; i < inherited.size(); ++i) {
    if (used[i]) continue;
    impl_->logger->warn("closing inherited socket fd {} (\"{}\"): it matches no listener", inherited[i].fd,
                        inherited[i].name);
    ::close(inherited[i].fd);
    impl_->unused_inherited.push_back(inherited[i].name);
  }
  impl_->counters->max_connections = config.daemon.max_connections;
  for (auto& listener : opened) {
    if (impl_->keep_socket_files) listener->keep_socket_file();
    listener->start();
    impl_->begin(*listener->service(), nullptr);
    impl_->listeners.push_back(std::move(listener));
  }
  return {};
}

const std::vector<std::string>& Server::unused_inherited() const { return impl_->unused_inherited; }

std::vector<Server::ListeningSocket> Server::listening_sockets() const {
  std::vector<ListeningSocket> out;
  for (const auto& listener : impl_->listeners) {
    if (listener->accepting()) out.push_back({socket_name(listener->config()), listener->config().name, listener->fd()});
  }
  return out;
}

void Server::keep_socket_files() {
  impl_->keep_socket_files = true;
  for (auto& listener : impl_->listeners) listener->keep_socket_file();
}

void Server::hand_over() {
  for (auto* group : {&impl_->listeners, &impl_->retired}) {
    for (auto& listener : *group) {
      listener->keep_socket_file();
      listener->stop();
    }
  }
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
      if (!kept[i] && same_listener(impl_->listeners[i]->config(), listener_config)) {
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
      const ServicePtr previous = plan.existing->service();
      if (auto updated = plan.existing->update(plan.service); !updated) {
        // The socket keeps serving with its previous options.
        impl_->logger->error("{}; listener \"{}\" keeps its previous settings", updated.error().message(), name);
      } else {
        impl_->begin(*plan.service, previous.get());
      }
      next.push_back(plan.existing);
    } else {
      if (impl_->keep_socket_files) plan.fresh->keep_socket_file();
      plan.fresh->start();
      impl_->begin(*plan.service, nullptr);
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
      accepted += listener->counters().accepted;
      refused += listener->counters().refused_total();
    }
  }
  return fmt::format("{} listener(s), {} connection(s), {} accepted, {} refused", impl_->listeners.size(),
                     impl_->counters->connections, accepted, refused);
}

void Server::set_observer(std::shared_ptr<ConnectionObserver> observer) {
  impl_->counters->observer = std::move(observer);
}

std::vector<Server::ListenerStatus> Server::listener_status() const {
  std::vector<ListenerStatus> out;
  for (const auto& listener : impl_->listeners) {
    ListenerStatus status{listener->config().name, listener->bound_address(), listener->config().handler,
                          listener->state(), listener->active(), listener->counters(),
                          listener->handler().status()};
    const auto [in, out_bytes] = listener->open_bytes();
    status.counters.bytes_received += in;
    status.counters.bytes_sent += out_bytes;
    out.push_back(std::move(status));
  }
  return out;
}

std::vector<Server::ConnectionStatus> Server::connections(std::string_view listener) const {
  std::vector<ConnectionStatus> out;
  const auto now = Connection::clock::now();
  for (const auto* group : {&impl_->listeners, &impl_->retired}) {
    for (const auto& l : *group) {
      if (!listener.empty() && l->config().name != listener) continue;
      l->for_each_connection([&](const ServerConnection& c) {
        out.push_back({std::string(c.listener_name()), c.peer(),
                       std::chrono::duration_cast<Duration>(now - c.accepted_at()), c.bytes_received(),
                       c.bytes_sent(), c.activity()});
      });
    }
  }
  return out;
}

void Server::record_reload(bool ok) {
  if (ok) {
    ++impl_->reloads_ok;
    impl_->last_config = std::chrono::system_clock::now();
  } else {
    ++impl_->reloads_failed;
  }
}

void Server::write_metrics(MetricsWriter& out) const {
  for (const auto& status : listener_status()) {
    const MetricsWriter::Labels labels = {{"listener", status.name}, {"handler", status.handler}};
    const auto& c = status.counters;
    out.counter("portico_connections_accepted_total", "Connections accepted and handed to the handler", labels,
                static_cast<double>(c.accepted));
    for (std::size_t i = 0; i < refusal_kinds; ++i) {
      out.counter("portico_connections_refused_total", "Connections refused before the handler saw them",
                  {{"listener", status.name}, {"handler", status.handler},
                   {"reason", to_string(static_cast<Refusal>(i))}},
                  static_cast<double>(c.refused[i]));
    }
    out.gauge("portico_connections_active", "Connections open now", labels, static_cast<double>(status.open));
    out.histogram("portico_connection_duration_seconds", "How long ended connections lasted", labels,
                  duration_buckets, c.durations, c.ended, c.duration_sum);
    out.counter("portico_received_bytes_total", "Bytes received from clients", labels,
                static_cast<double>(c.bytes_received));
    out.counter("portico_sent_bytes_total", "Bytes sent to clients", labels, static_cast<double>(c.bytes_sent));
    out.counter("portico_timeouts_total", "Connections closed by a listener timeout",
                {{"listener", status.name}, {"handler", status.handler}, {"kind", "idle"}},
                static_cast<double>(c.idle_timeouts));
    out.counter("portico_timeouts_total", "Connections closed by a listener timeout",
                {{"listener", status.name}, {"handler", status.handler}, {"kind", "session"}},
                static_cast<double>(c.session_timeouts));
    if (status.counters.tls_renegotiations > 0) {
      out.counter("portico_tls_renegotiations_total", "TLS 1.2 clients closed for trying to renegotiate", labels,
                  static_cast<double>(c.tls_renegotiations));
    }
  }
  for (const auto& listener : impl_->listeners) listener->handler().write_metrics(out, listener->config().name);
  out.counter("portico_reloads_total", "Configuration reloads", {{"result", "ok"}},
              static_cast<double>(impl_->reloads_ok));
  out.counter("portico_reloads_total", "Configuration reloads", {{"result", "failed"}},
              static_cast<double>(impl_->reloads_failed));
  out.gauge("portico_config_last_reload_success_timestamp_seconds",
            "When the running configuration was loaded (Unix time)", {},
            std::chrono::duration<double>(impl_->last_config.time_since_epoch()).count());
  if (impl_->counters->observer) impl_->counters->observer->write_metrics(out);
  out.gauge("portico_build_info", "The running porticod's version (always 1)", {{"version", version()}}, 1);
  write_process_metrics(out);
}

Result<void> Server::disable(std::string_view name) {
  Listener* listener = impl_->find(name);
  if (listener == nullptr) return fail("no listener named \"{}\"", name);
  listener->disable();
  return {};
}

Result<void> Server::enable(std::string_view name) {
  Listener* listener = impl_->find(name);
  if (listener == nullptr) return fail("no listener named \"{}\"", name);
  listener->enable();
  return {};
}

Result<void> Server::drain(std::string_view name, Duration timeout, std::function<void(std::size_t)> done) {
  Listener* listener = impl_->find(name);
  if (listener == nullptr) return fail("no listener named \"{}\"", name);
  listener->drain(timeout, std::move(done));
  return {};
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
