#pragma once
// metrics: the server's counters for Prometheus. Answers HTTP GET /metrics
// (and HEAD) with every series of the server, its listeners and their
// handlers in the text exposition format; 404 for other paths, 405 for
// other methods; keep-alive. Boost.Beast parses the requests.

#include <portico/handler.hpp>

namespace portico::handlers {

HandlerType metrics_type();

}  // namespace portico::handlers
