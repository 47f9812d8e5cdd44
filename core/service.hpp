#pragma once
// One generation of a listener's configuration and handler. Internal to the
// server.

#include <memory>
#include <utility>

#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <boost/smart_ptr/intrusive_ref_counter.hpp>

#include <portico/config.hpp>
#include <portico/handler.hpp>

#include "core/tls.hpp"

namespace portico {

// A connection keeps the generation it was accepted under, so after a
// reload it finishes with the handler object it started with.
// Single-threaded reference counts: every owner lives on the io_context's
// one thread.
struct Service : boost::intrusive_ref_counter<Service, boost::thread_unsafe_counter> {
  Service(ListenerConfig c, std::unique_ptr<Handler> h, std::shared_ptr<const TlsServerContext> t)
      : config(std::move(c)), handler(std::move(h)), tls(std::move(t)) {}
  ListenerConfig config;
  std::unique_ptr<Handler> handler;
  // Loaded from the files when the generation is built; connections in
  // flight keep theirs across a reload.
  std::shared_ptr<const TlsServerContext> tls;
};

using ServicePtr = boost::intrusive_ptr<Service>;

}  // namespace portico
