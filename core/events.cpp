#include <portico/events.hpp>

namespace portico {

std::string_view to_string(ConnectionEnd end) {
  switch (end) {
    case ConnectionEnd::client_closed: return "client_closed";
    case ConnectionEnd::handler_done: return "handler_done";
    case ConnectionEnd::idle_timeout: return "idle_timeout";
    case ConnectionEnd::session_timeout: return "session_timeout";
    case ConnectionEnd::error: return "error";
    case ConnectionEnd::shutdown: return "shutdown";
  }
  return "?";
}

std::string_view to_string(Refusal refusal) {
  switch (refusal) {
    case Refusal::access: return "access";
    case Refusal::max_connections: return "max_connections";
    case Refusal::max_per_source: return "max_per_source";
    case Refusal::rate: return "rate";
    case Refusal::proxy_header: return "proxy_header";
    case Refusal::tls_handshake: return "tls_handshake";
  }
  return "?";
}

}  // namespace portico
