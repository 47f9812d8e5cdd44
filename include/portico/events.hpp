#pragma once
// What the server reports about each connection, for an access log or any
// other observer (Server::set_observer): one record when a connection ends,
// one when a listener refuses one. Counters of the same events are kept
// whether or not anyone observes (Server::listener_status).

#include <array>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <portico/duration.hpp>
#include <portico/endpoint.hpp>

namespace portico {

class MetricsWriter;
struct TlsInfo;

// How a connection ended, as the access log words it.
enum class ConnectionEnd : std::uint8_t {
  client_closed,    // the client closed its side and the handler finished
  handler_done,     // the handler finished (and closed) first
  idle_timeout,     // the listener's idle_timeout passed
  session_timeout,  // the listener's session_timeout passed
  error,            // a read or write failed (reset, broken pipe, ...)
  shutdown,         // the server closed it: a stop, or a removed listener's drain
};
std::string_view to_string(ConnectionEnd end);

// Why a listener turned a client away before any handler saw it.
enum class Refusal : std::uint8_t {
  access,          // allow/deny
  max_connections, // the listener's or [daemon] max_connections
  max_per_source,
  rate,
  proxy_header,    // missing, malformed or late PROXY protocol header
  tls_handshake,   // failed, garbage or too slow TLS handshake
};
inline constexpr std::size_t refusal_kinds = 6;
std::string_view to_string(Refusal refusal);

// One ended connection. Views into it are valid only during the call.
struct ConnectionRecord {
  std::string_view listener;
  std::string_view handler;
  const Endpoint& peer;             // the client (the PROXY header's, when there was one)
  const Endpoint* socket_peer;      // the real peer when a PROXY header named another, else nullptr
  const Endpoint& local;            // the address the client reached
  std::chrono::system_clock::time_point accepted;
  std::chrono::microseconds duration;  // from the accept to the close
  std::uint64_t bytes_received;     // from the client
  std::uint64_t bytes_sent;         // to the client
  ConnectionEnd end;
  std::string_view error;           // for ConnectionEnd::error: what the OS said
  // What the handler added (Connection::annotate), in order: the proxy's
  // upstream and connect time, exec's pid and exit status.
  std::span<const std::pair<std::string, std::string>> fields;
  // What the TLS handshake negotiated, on a TLS listener; else nullptr.
  const TlsInfo* tls = nullptr;
};

// One refused connection.
struct RefusalRecord {
  std::string_view listener;
  std::string_view handler;
  const Endpoint& peer;
  const Endpoint* socket_peer;      // as in ConnectionRecord
  Refusal reason;
  std::string_view detail;          // e.g. "denied by 10.0.0.0/8", "rate (100/s) exceeded"
  // Refusals are reported at most once per interval per listener, like the
  // warnings in the log: how many were held back since the last record.
  std::uint64_t suppressed;
};

// Receives the records of the listeners whose config has access_log on.
// Called on the server's thread; must not block (an access log buffers).
class ConnectionObserver {
 public:
  virtual ~ConnectionObserver() = default;
  virtual void connection_ended(const ConnectionRecord& record) = 0;
  virtual void connection_refused(const RefusalRecord& record) = 0;
  // Adds the observer's own series to a metrics scrape (an access log: the
  // lines it had to drop). The default adds none.
  virtual void write_metrics(MetricsWriter& out) const { (void)out; }
};

// Upper bounds, in seconds, of the connection duration histogram.
inline constexpr std::array<double, 14> duration_buckets = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1,
                                                             5,     10,    30,   60,   300, 1800, 3600};

// What one listener counted since it was created; a listener kept across a
// reload keeps its counters.
struct ListenerCounters {
  std::uint64_t accepted = 0;    // admitted and handed to the handler's stages
  std::uint64_t ended = 0;       // connections that ended (accepted minus open)
  std::array<std::uint64_t, refusal_kinds> refused{};  // by Refusal
  std::uint64_t idle_timeouts = 0;
  std::uint64_t session_timeouts = 0;
  std::uint64_t tls_renegotiations = 0;  // TLS 1.2 clients closed for renegotiating
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  // Durations of ended connections: counts per bucket of duration_buckets
  // (and one more for longer ones), and their sum in seconds.
  std::array<std::uint64_t, duration_buckets.size() + 1> durations{};
  double duration_sum = 0;

  std::uint64_t refused_total() const {
    std::uint64_t n = 0;
    for (const auto r : refused) n += r;
    return n;
  }
};

}  // namespace portico
