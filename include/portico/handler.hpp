#pragma once
// The contract between the server and a handler type.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <portico/diagnostics.hpp>
#include <portico/duration.hpp>
#include <portico/endpoint.hpp>
#include <portico/options.hpp>
#include <portico/result.hpp>

namespace spdlog {
class logger;
}

namespace portico {

class Connection;
class MetricsWriter;

// What a handler gets for work of its own, beside its connections.
struct HandlerContext {
  // The server's: every connection of the listener runs on it. Work the
  // handler starts here runs on the same thread as serve().
  boost::asio::any_io_executor executor;
  // The server's log, for lines about the handler itself rather than one
  // connection; such lines start with `listener "NAME": `, as the server's
  // own lines about a listener do.
  std::shared_ptr<spdlog::logger> logger;
  std::string listener;  // the listener's name
};

// One handler object serves every connection of one listener (built from
// that listener's options). serve() runs as its own coroutine per connection
// on the server's single io_context thread; it owns nothing of the
// connection and must not keep a reference to it after returning. An
// exception escaping serve() is logged and ends that connection only.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual boost::asio::awaitable<void> serve(Connection& conn) = 0;

  // For protocols where the client speaks first: how long the server may
  // hold a new connection before serve() starts, waiting for the client's
  // first bytes (zero: as long as the listener's timeouts allow). While it
  // waits, the connection holds no coroutine and no buffer, a few hundred
  // bytes in all, so thousands of silent clients cost little. serve() then
  // starts when bytes (or an EOF, or an error) arrive, or when the time is
  // up; Connection::accepted_at() tells how long that took. A value also
  // turns the listener's defer_accept "auto" on: the kernel itself holds a
  // connection until its first bytes come, for up to a second. The default,
  // std::nullopt (the server speaks first), starts serve() at once.
  virtual std::optional<Duration> client_speaks_first() const { return std::nullopt; }

  // Adds the handler's own series to a metrics scrape (see
  // <portico/metrics.hpp>), labelled with `listener`, the listener's name:
  // the proxy's per upstream, exec's children. The default adds none.
  virtual void write_metrics(MetricsWriter& out, std::string_view listener) const {
    (void)out;
    (void)listener;
  }

  // What the handler has to say about its state, one line per item, for
  // `porticoctl status` (the proxy: each upstream, up or down). The default
  // says nothing.
  virtual std::vector<std::string> status() const { return {}; }

  // A reload kept this handler's listener, with the same handler type, and
  // built this handler to replace `previous` (which goes on serving the
  // connections it has until they end): take over what should outlive the
  // reload, such as counters or what is known of upstream servers. Called
  // before this handler serves its first connection. The default keeps
  // nothing.
  virtual void take_over(Handler& previous) { (void)previous; }

  // Called once, when the handler starts to serve its listener: at the
  // server's start, or when a reload put it in place (after take_over()).
  // A handler with work of its own between connections (the proxy's health
  // checks) starts it here on `context.executor`, and ends it in its
  // destructor, which runs once the listener dropped the handler and its
  // last connection ended. A handler that a failed reload built is destroyed
  // without being started. The default does nothing.
  virtual void start(const HandlerContext& context) { (void)context; }
};

// What a probe checks: a listener of the handler's type, from outside.
struct ProbeTarget {
  boost::asio::any_io_executor executor;
  Endpoint address;       // where the listener accepts (its real port; the
                          // loopback address for 0.0.0.0 and ::)
  const Options& options;  // the listener's handler options
  Duration timeout;        // for the whole probe
  // How a client gets through to the handler; connect_probe() of
  // <portico/probe.hpp> does what they say.
  bool tls = false;                   // the listener has TLS
  std::vector<std::string> tls_alpn;  // the protocols it accepts (tls_alpn)
  bool proxy_protocol = false;        // it expects a PROXY protocol header
};

// Connects to a listener as a client would and checks that it answers as
// its handler type should (porticoctl probe), or checks what else tells
// whether it can work (the proxy's upstreams, exec's program). Returns
// what was checked and seen ("answered \"Hello from server!\\n\""), or
// why it failed. A type without one is reported as "not probed".
using HandlerProbe = std::function<boost::asio::awaitable<Result<std::string>>(const ProbeTarget& target)>;

// Reports handler-specific mistakes beyond what the option schema checks
// (e.g. a command that does not exist). Call `errors.error(pos, msg)` with
// `options.position(name)`.
using OptionValidator = std::function<void(const Options& options, Diagnostics& errors)>;
using HandlerFactory = std::function<std::unique_ptr<Handler>(const Options& options)>;

// A handler type: a name, an options schema and a factory. The schema is the
// single source for validation, --list-handlers and the documentation.
struct HandlerType {
  std::string name;
  std::string doc;  // one line
  std::vector<OptionSpec> options;
  HandlerFactory create;
  OptionValidator validate = {};
  HandlerProbe probe = {};

  const OptionSpec* find_option(std::string_view option) const;
};

}  // namespace portico
