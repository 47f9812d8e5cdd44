#include "proxy.hpp"

#include <chrono>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <optional>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include <portico/connection.hpp>
#include <portico/io.hpp>
#include <portico/log_throttle.hpp>
#include <portico/probe.hpp>
#include <portico/proxy_protocol.hpp>
#include <portico/text.hpp>
#include <portico/tls.hpp>

#include "relay.hpp"
#include "upstream.hpp"

namespace portico::handlers {

namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using spdlog::level::debug;

enum class SendProxy { none, v1, v2 };

// The client as the connection knows it (a PROXY header the listener read
// already replaced the peer), and the address it connected to.
std::vector<std::uint8_t> proxy_header(const Connection& conn, SendProxy version) {
  const ProxyEndpoint source = proxy_endpoint(conn.peer());
  const ProxyEndpoint destination = proxy_endpoint(conn.local());
  return version == SendProxy::v1 ? build_proxy_v1(source, destination) : build_proxy_v2(source, destination);
}

std::string describe_failure(const error_code& ec, Duration timeout) {
  if (ec == asio::error::timed_out) return fmt::format("timed out after {}", format_duration(timeout));
  // A TLS failure says so: "TLS: hostname mismatch".
  if (ec.category() != boost::system::system_category() && ec.category() != asio::error::get_misc_category() &&
      ec.category() != asio::error::get_netdb_category() && ec.category() != asio::error::get_addrinfo_category()) {
    return "TLS: " + ec.message();
  }
  return ec.message();
}

class Proxy final : public Handler {
 public:
  explicit Proxy(const Options& options) : connect_timeout_(options.duration("connect_timeout")) {
    for (const auto& text : options.string_list("upstream")) {
      std::string error;
      auto upstream = parse_upstream(text, error);
      // validate() refused these already; a library user may skip it.
      if (!upstream) throw std::invalid_argument(error);
      upstreams_.push_back(std::move(*upstream));
    }
    if (upstreams_.empty()) throw std::invalid_argument("\"upstream\" lists no address");
    const auto& send = options.string("send_proxy");
    send_proxy_ = send == "v1" ? SendProxy::v1 : send == "v2" ? SendProxy::v2 : SendProxy::none;
    if (options.boolean("upstream_tls")) {
      TlsClientSettings settings;
      settings.ca_file = options.string("upstream_tls_ca");
      auto context = TlsClientContext::create(settings);
      if (!context) throw std::invalid_argument(context.error().message());
      tls_ = std::move(*context);
      tls_server_name_ = options.string("upstream_tls_server_name");
    }
  }

  asio::awaitable<void> serve(Connection& conn) override {
    const auto executor = conn.executor();
    UpstreamSocket socket(executor);
    std::optional<Stream> upstream;
    // A shutdown or a reload's drain closes the client; this ends whatever
    // the connection waits for on the upstream's side.
    asio::steady_timer stop(executor, clock::time_point::max());
    bool stopped = false;
    conn.on_close([&] {
      stopped = true;
      stop.cancel();
      error_code ignored;
      socket.close(ignored);
      if (upstream) upstream->close();
    });

    const Upstream* reached = co_await connect(conn, socket, upstream, stop, stopped);
    if (reached == nullptr) co_return;

    const auto started = clock::now();
    const RelayResult result = co_await relay(conn, *upstream);
    if (conn.should_log(debug)) {
      const bool failed = result.error && !stopped && result.error != asio::error::timed_out;
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started);
      conn.log(debug, "relayed {} bytes to {} and {} bytes back in {}ms{}{}", result.client_to_upstream,
               reached->text, result.upstream_to_client, took.count(), failed ? "; " : "",
               failed ? result.error.message() : "");
    }
  }

 private:
  // Tries each upstream once, starting one further along the list for
  // every connection, until one is connected (and, as configured, has its
  // PROXY header and a TLS session): nothing of the client's has been sent
  // to it until then, so trying the next one is safe. Returns the one
  // reached, with `upstream` open, or nullptr.
  asio::awaitable<const Upstream*> connect(Connection& conn, UpstreamSocket& socket, std::optional<Stream>& upstream,
                                           asio::steady_timer& stop, const bool& stopped) {
    std::string failures;
    const std::size_t first = next_++ % upstreams_.size();
    for (std::size_t i = 0; i < upstreams_.size(); ++i) {
      const Upstream& target = upstreams_[(first + i) % upstreams_.size()];
      const auto began = clock::now();
      auto result = co_await (establish(conn, target, socket, upstream) || stop.async_wait(use_tuple));
      if (stopped || result.index() != 0) co_return nullptr;
      const error_code ec = std::get<0>(result);
      if (!ec) {
        conn.log(debug, "connected to upstream {}", target.text);
        if (conn.annotating()) {
          conn.annotate("upstream", target.text);
          conn.annotate("connect_ms",
                        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - began).count()));
        }
        co_return &target;
      }
      upstream.reset();
      const std::string why = describe_failure(ec, connect_timeout_);
      conn.log(debug, "upstream {} failed: {}", target.text, why);
      failures += fmt::format("{}{} ({})", failures.empty() ? "" : ", ", target.text, why);
    }
    conn.log_throttled(unreachable_log_, spdlog::level::warn, "no upstream reachable: {}", failures);
    co_return nullptr;
  }

  // One attempt: connect, then the PROXY header (which goes before TLS, as
  // servers that read both expect), then the TLS handshake.
  asio::awaitable<error_code> establish(Connection& conn, const Upstream& target, UpstreamSocket& socket,
                                        std::optional<Stream>& upstream) {
    if (const error_code ec = co_await connect_upstream(target, socket, connect_timeout_)) co_return ec;
    if (target.kind != Upstream::Kind::unix_path) {
      error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    upstream.emplace(std::move(socket));
    if (send_proxy_ != SendProxy::none) {
      const auto header = proxy_header(conn, send_proxy_);
      const IoResult sent = co_await upstream->write(asio::buffer(header), connect_timeout_);
      if (!sent.ok()) co_return sent.ec;
    }
    if (tls_) {
      const std::string& name = tls_server_name_.empty() ? target.host : tls_server_name_;
      const IoResult shook = co_await upstream->start_tls(*tls_, name, connect_timeout_);
      if (!shook.ok()) co_return shook.ec;
    }
    co_return error_code{};
  }

  std::vector<Upstream> upstreams_;
  Duration connect_timeout_;
  SendProxy send_proxy_ = SendProxy::none;
  std::size_t next_ = 0;  // round-robin position; one io_context thread, so no atomics
  LogThrottle unreachable_log_;
  std::shared_ptr<const TlsClientContext> tls_;  // upstream_tls
  std::string tls_server_name_;
};

void validate(const Options& options, Diagnostics& errors) {
  const auto& list = options.string_list("upstream");
  if (list.empty()) errors.error(options.position("upstream"), "\"upstream\" needs at least one address");
  for (const auto& text : list) {
    std::string error;
    if (!parse_upstream(text, error)) errors.error(options.position("upstream"), error);
  }
  const bool tls = options.boolean("upstream_tls");
  for (const char* key : {"upstream_tls_ca", "upstream_tls_server_name"}) {
    if (!tls && options.is_explicit(key)) {
      errors.error(options.position(key), fmt::format("\"{}\" applies only with upstream_tls = true", key));
    }
  }
  if (tls) {
    TlsClientSettings settings;
    settings.ca_file = options.string("upstream_tls_ca");
    if (auto context = TlsClientContext::create(settings); !context) {
      errors.error(options.position(options.is_explicit("upstream_tls_ca") ? "upstream_tls_ca" : "upstream_tls"),
                   context.error().message());
    }
  }
}

}  // namespace

namespace {

// Connects to each upstream, one after the other within the probe's time,
// and closes at once: nothing is relayed, so an upstream sees a connection
// without a byte (a TLS upstream, without a handshake).
asio::awaitable<Result<std::string>> probe(const ProbeTarget& target) {
  const auto deadline = clock::now() + target.timeout;
  const Duration connect_timeout = target.options.duration("connect_timeout");
  std::vector<std::string> failed;
  std::size_t reached = 0;
  for (const auto& text : target.options.string_list("upstream")) {
    std::string error;
    const auto upstream = parse_upstream(text, error);
    if (!upstream) {
      failed.push_back(fmt::format("{}: {}", quote_text(text), error));
      continue;
    }
    auto left = std::chrono::duration_cast<Duration>(deadline - clock::now());
    if (left.count() <= 0) left = Duration(1);
    if (connect_timeout.count() > 0) left = std::min(left, connect_timeout);
    UpstreamSocket socket(target.executor);
    const error_code ec = co_await connect_upstream(*upstream, socket, left);
    if (ec) {
      failed.push_back(fmt::format("{} unreachable: {}", upstream->text, describe_failure(ec, left)));
    } else {
      ++reached;
    }
  }
  if (!failed.empty()) {
    co_return fail("{} of {} upstream(s) reachable; {}", reached, reached + failed.size(), fmt::join(failed, "; "));
  }
  co_return fmt::format("{} upstream(s) reachable (connected, nothing relayed)", reached);
}

}  // namespace

HandlerType proxy_type() {
  using namespace std::chrono_literals;
  return HandlerType{
      .name = "proxy",
      .doc = "relay connections to upstream servers, round-robin with failover",
      .options =
          {
              {.name = "upstream",
               .type = OptionType::string_list,
               .default_value = std::nullopt,  // required
               .doc = "addresses to relay to, tried in turn: \"a.b.c.d:port\", \"[ipv6]:port\", \"unix:/path\" "
                      "or \"host.name:port\""},
              {.name = "connect_timeout",
               .type = OptionType::duration,
               .default_value = Duration(5s),
               .doc = "how long to try one upstream (resolving its name included) before the next; 0s waits "
                      "forever"},
              {.name = "send_proxy",
               .type = OptionType::string,
               .default_value = std::string("none"),
               .doc = "send the client's address to the upstream in a PROXY protocol header first",
               .choices = {"none", "v1", "v2"}},
              {.name = "upstream_tls",
               .type = OptionType::boolean,
               .default_value = false,
               .doc = "talk TLS to the upstreams, checking their certificates"},
              {.name = "upstream_tls_ca",
               .type = OptionType::string,
               .default_value = std::string(),
               .doc = "PEM file of the CAs upstream certificates must chain to; empty: the system's"},
              {.name = "upstream_tls_server_name",
               .type = OptionType::string,
               .default_value = std::string(),
               .doc = "the name to send (SNI) and to check in upstream certificates; empty: each upstream's host"},
          },
      .create = [](const Options& options) { return std::make_unique<Proxy>(options); },
      .validate = validate,
      .probe = probe,
  };
}

}  // namespace portico::handlers
