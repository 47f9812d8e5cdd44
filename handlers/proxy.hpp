#pragma once
// proxy: relay each connection to one of a list of upstreams (TCP, Unix
// socket or host name), picked by a balancing policy among those that are
// up, both ways until both sides are done; another one when the connect
// fails. Health comes from active checks and from failed client connects.
// Optionally tells the upstream who the client is with a PROXY protocol v1
// or v2 header, and talks TLS to it.

#include <portico/handler.hpp>

namespace portico::handlers {

HandlerType proxy_type();

}  // namespace portico::handlers
