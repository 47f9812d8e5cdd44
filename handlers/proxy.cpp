#include "proxy.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include <portico/connection.hpp>
#include <portico/io.hpp>
#include <portico/log_throttle.hpp>
#include <portico/metrics.hpp>
#include <portico/probe.hpp>
#include <portico/proxy_protocol.hpp>
#include <portico/text.hpp>
#include <portico/tls.hpp>

#include "relay.hpp"
#include "upstream.hpp"
#include "upstream_pool.hpp"

namespace portico::handlers {

namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using spdlog::level::debug;

// The client as the connection knows it (a PROXY header the listener read
// already replaced the peer), and the address it connected to.
std::vector<std::uint8_t> proxy_header(const Connection& conn, SendProxy version) {
  const ProxyEndpoint source = proxy_endpoint(conn.peer());
  const ProxyEndpoint destination = proxy_endpoint(conn.local());
  return version == SendProxy::v1 ? build_proxy_v1(source, destination) : build_proxy_v2(source, destination);
}

Balance balance_of(const std::string& word) {
  if (word == "least_conn") return Balance::least_conn;
  if (word == "source_hash") return Balance::source_hash;
  if (word == "random_two") return Balance::random_two;
  return Balance::round_robin;
}

PoolSettings pool_settings(const Options& options) {
  PoolSettings settings;
  settings.balance = balance_of(options.string("balance"));
  const Duration connect_timeout = options.duration("connect_timeout");
  HealthSettings& health = settings.health;
  health.interval = options.duration("health_check_interval");
  // A check may take connect_timeout, but never longer than the interval.
  health.timeout = connect_timeout.count() > 0 ? std::min(connect_timeout, health.interval) : health.interval;
  health.send = options.string("health_check_send");
  health.expect = options.string("health_check_expect");
  health.fall = options.integer("health_check_fall");
  health.rise = options.integer("health_check_rise");
  settings.max_fails = options.integer("max_fails");
  settings.fail_timeout = options.duration("fail_timeout");
  const auto& send = options.string("send_proxy");
  settings.send_proxy = send == "v1" ? SendProxy::v1 : send == "v2" ? SendProxy::v2 : SendProxy::none;
  if (options.boolean("upstream_tls")) {
    TlsClientSettings tls;
    tls.ca_file = options.string("upstream_tls_ca");
    auto context = TlsClientContext::create(tls);
    if (!context) throw std::invalid_argument(context.error().message());
    settings.tls = std::move(*context);
    settings.tls_server_name = options.string("upstream_tls_server_name");
  }
  return settings;
}

class Proxy final : public Handler {
 public:
  explicit Proxy(const Options& options)
      : connect_timeout_(options.duration("connect_timeout")),
        pool_(options.upstream_list("upstream"), pool_settings(options)) {}

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

    Lease lease;
    const auto reached = co_await connect(conn, socket, upstream, lease, stop, stopped);
    if (!reached) co_return;

    const auto started = clock::now();
    const RelayResult result = co_await relay(conn, *upstream);
    if (conn.should_log(debug)) {
      const bool failed = result.error && !stopped && result.error != asio::error::timed_out;
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started);
      conn.log(debug, "relayed {} bytes to {} and {} bytes back in {}ms{}{}", result.client_to_upstream,
               pool_.members()[*reached].target.text, result.upstream_to_client, took.count(),
               failed ? "; " : "", failed ? result.error.message() : "");
    }
  }

  void take_over(Handler& previous) override {
    if (auto* proxy = dynamic_cast<Proxy*>(&previous)) pool_.take_over(proxy->pool_);
  }
  void start(const HandlerContext& context) override { pool_.start(context); }
  std::vector<std::string> status() const override { return pool_.status(); }
  void write_metrics(MetricsWriter& out, std::string_view listener) const override {
    pool_.write_metrics(out, listener);
  }

 private:
  // Tries the upstreams the policy picks, each at most once, until one is
  // connected (and, as configured, has its PROXY header and a TLS
  // session): nothing of the client's has been sent to it until then, so
  // trying the next one is safe. Returns the index of the one reached, with
  // `upstream` open and `lease` counting the connection, or nullopt.
  asio::awaitable<std::optional<std::size_t>> connect(Connection& conn, UpstreamSocket& socket,
                                                      std::optional<Stream>& upstream, Lease& lease,
                                                      asio::steady_timer& stop, const bool& stopped) {
    const auto& members = pool_.members();
    std::vector<bool> tried(members.size(), false);
    std::string failures;
    for (std::size_t attempt = 0; attempt < members.size(); ++attempt) {
      const auto index = pool_.choose(conn.peer(), tried);
      if (!index) break;
      tried[*index] = true;
      const Upstream& target = members[*index].target;
      lease = Lease(members[*index].state);
      const auto began = clock::now();
      auto result = co_await (establish(conn, target, socket, upstream) || stop.async_wait(use_tuple));
      if (stopped || result.index() != 0) co_return std::nullopt;
      const error_code ec = std::get<0>(result);
      if (!ec) {
        pool_.connected(*index);
        conn.log(debug, "connected to upstream {}", target.text);
        if (conn.annotating()) {
          conn.annotate("upstream", target.text);
          conn.annotate("connect_ms",
                        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - began).count()));
        }
        co_return index;
      }
      lease.release();
      upstream.reset();
      const std::string why = describe_failure(ec, connect_timeout_);
      pool_.failed(*index, why);
      conn.log(debug, "upstream {} failed: {}", target.text, why);
      failures += fmt::format("{}{} ({})", failures.empty() ? "" : ", ", target.text, why);
    }
    if (failures.empty()) {
      ++pool_.refusals().all_down;
      conn.log_throttled(unreachable_log_, spdlog::level::warn, "no upstream up: client refused ({} down)",
                         members.size() == 1 ? "the only upstream is" : fmt::format("all {} upstreams", members.size()));
    } else {
      ++pool_.refusals().unreachable;
      conn.log_throttled(unreachable_log_, spdlog::level::warn, "no upstream reachable: {}", failures);
    }
    co_return std::nullopt;
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
    const PoolSettings& settings = pool_.settings();
    if (settings.send_proxy != SendProxy::none) {
      const auto header = proxy_header(conn, settings.send_proxy);
      const IoResult sent = co_await upstream->write(asio::buffer(header), connect_timeout_);
      if (!sent.ok()) co_return sent.ec;
    }
    if (settings.tls) {
      const std::string& name = settings.tls_server_name.empty() ? target.host : settings.tls_server_name;
      const IoResult shook = co_await upstream->start_tls(*settings.tls, name, connect_timeout_);
      if (!shook.ok()) co_return shook.ec;
    }
    co_return error_code{};
  }

  Duration connect_timeout_;
  UpstreamPool pool_;
  LogThrottle unreachable_log_;
};

void validate(const Options& options, Diagnostics& errors) {
  const auto& list = options.upstream_list("upstream");
  if (list.empty()) errors.error(options.position("upstream"), "\"upstream\" needs at least one address");
  bool primary = false;
  for (const auto& entry : list) {
    if (auto upstream = parse_upstream(entry.address); !upstream) errors.error(entry.pos, upstream.error().message());
    primary = primary || !entry.backup;
  }
  if (!list.empty() && !primary) {
    errors.error(options.position("upstream"),
                 "\"upstream\" lists only backups: a backup takes clients only while every other upstream is "
                 "down, so at least one must not be a backup");
  }
  // Settings that could only matter with checks (or passive ejection) on
  // are errors without them, unless they say what the default says (as
  // --print-config writes every option).
  const bool checks = options.duration("health_check_interval").count() > 0;
  const bool check_settings[] = {!options.string("health_check_send").empty(),
                                 !options.string("health_check_expect").empty(),
                                 options.integer("health_check_fall") != 3, options.integer("health_check_rise") != 2};
  const char* check_keys[] = {"health_check_send", "health_check_expect", "health_check_fall", "health_check_rise"};
  for (std::size_t i = 0; i < std::size(check_keys); ++i) {
    if (!checks && check_settings[i]) {
      errors.error(options.position(check_keys[i]),
                   fmt::format("\"{}\" applies only with health_check_interval set (health checks are off)",
                               check_keys[i]));
    }
  }
  if (options.is_explicit("fail_timeout") && options.duration("fail_timeout").count() == 0) {
    errors.error(options.position("fail_timeout"), "\"fail_timeout\" must be longer than \"0s\"");
  } else if (options.integer("max_fails") == 0 && options.duration("fail_timeout") != Duration(std::chrono::seconds(10))) {
    errors.error(options.position("fail_timeout"), "\"fail_timeout\" applies only with max_fails above 0");
  }
  const bool tls = options.boolean("upstream_tls");
  // An empty value is the default, which --print-config writes out.
  for (const char* key : {"upstream_tls_ca", "upstream_tls_server_name"}) {
    if (!tls && options.is_explicit(key) && !options.string(key).empty()) {
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
  for (const auto& entry : target.options.upstream_list("upstream")) {
    const auto upstream = parse_upstream(entry.address);
    if (!upstream) {
      failed.push_back(fmt::format("{}: {}", quote_text(entry.address), upstream.error().message()));
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
      .doc = "relay connections to upstream servers, balanced, with health checks and failover",
      .options =
          {
              {.name = "upstream",
               .type = OptionType::upstream_list,
               .default_value = std::nullopt,  // required
               .doc = "servers to relay to: \"a.b.c.d:port\", \"[ipv6]:port\", \"unix:/path\" or "
                      "\"host.name:port\", each alone or as { address = \"...\", weight = N, backup = true }"},
              {.name = "balance",
               .type = OptionType::string,
               .default_value = std::string("round_robin"),
               .doc = "how a new client's upstream is picked",
               .choices = {"round_robin", "least_conn", "source_hash", "random_two"}},
              {.name = "connect_timeout",
               .type = OptionType::duration,
               .default_value = Duration(5s),
               .doc = "how long to try one upstream (resolving its name included) before the next, and "
                      "the longest a health check may take; 0s waits forever"},
              {.name = "send_proxy",
               .type = OptionType::string,
               .default_value = std::string("none"),
               .doc = "send the client's address to the upstream in a PROXY protocol header first",
               .choices = {"none", "v1", "v2"}},
              {.name = "health_check_interval",
               .type = OptionType::duration,
               .default_value = Duration(0),
               .doc = "how often each upstream is checked by connecting to it; 0s: no checks"},
              {.name = "health_check_send",
               .type = OptionType::string,
               .default_value = std::string(),
               .doc = "bytes a check sends once connected",
               .bytes = true},
              {.name = "health_check_expect",
               .type = OptionType::string,
               .default_value = std::string(),
               .doc = "bytes a check's answer must start with; empty: connecting is enough",
               .bytes = true},
              {.name = "health_check_fall",
               .type = OptionType::integer,
               .default_value = std::int64_t(3),
               .doc = "checks failed in a row that mark an upstream down",
               .min = 1,
               .max = 1000},
              {.name = "health_check_rise",
               .type = OptionType::integer,
               .default_value = std::int64_t(2),
               .doc = "checks passed in a row that mark it up again",
               .min = 1,
               .max = 1000},
              {.name = "max_fails",
               .type = OptionType::integer,
               .default_value = std::int64_t(1),
               .doc = "client connects that fail within fail_timeout to mark an upstream down for fail_timeout; "
                      "0: never",
               .min = 0,
               .max = 1000},
              {.name = "fail_timeout",
               .type = OptionType::duration,
               .default_value = Duration(10s),
               .doc = "the window max_fails counts in, and how long the upstream is then left out"},
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
