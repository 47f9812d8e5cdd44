#pragma once
// proxy: relay each connection to the first reachable of a list of
// upstreams (TCP, Unix socket or host name), tried round-robin, both ways
// until both sides are done. Optionally tells the upstream who the client is
// with a PROXY protocol v1 or v2 header.

#include <portico/handler.hpp>

namespace portico::handlers {

HandlerType proxy_type();

}  // namespace portico::handlers
