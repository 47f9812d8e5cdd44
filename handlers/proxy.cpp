#include "handlers/proxy.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <portico/connection.hpp>

#include "daemon/proxy_protocol.hpp"
#include "handlers/relay.hpp"
#include "handlers/upstream.hpp"

namespace portico::handlers {

namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using spdlog::level::debug;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

enum class SendProxy { none, v1, v2 };

ProxyEndpoint proxy_endpoint(const asio::ip::address& ip, std::uint16_t port) {
  if (ip.is_v4()) return ProxyEndpoint::ipv4(ip.to_v4().to_bytes(), port);
  const auto v6 = ip.to_v6();
  // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; the upstream
  // should see them as what they are.
  if (v6.is_v4_mapped()) return ProxyEndpoint::ipv4(asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_bytes(), port);
  return ProxyEndpoint::ipv6(v6.to_bytes(), port);
}

ProxyEndpoint proxy_endpoint(const Connection::socket_type::endpoint_type& endpoint) {
  const int family = endpoint.data()->sa_family;
  if (family == AF_INET || family == AF_INET6) {
    asio::ip::tcp::endpoint ip;
    std::memcpy(ip.data(), endpoint.data(), std::min<std::size_t>(endpoint.size(), ip.capacity()));
    return proxy_endpoint(ip.address(), ip.port());
  }
  if (family == AF_UNIX && endpoint.size() > offsetof(sockaddr_un, sun_path)) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(endpoint.data());
    const std::size_t room = endpoint.size() - offsetof(sockaddr_un, sun_path);
    return ProxyEndpoint::unix_socket(std::string(un->sun_path, strnlen(un->sun_path, room)));
  }
  return {};
}

// The client as the connection knows it (a PROXY header the listener read
// already replaced the peer), and the address it connected to.
std::vector<std::uint8_t> proxy_header(Connection& conn, SendProxy version) {
  const Peer& peer = conn.peer();
  const ProxyEndpoint source = peer.is_unix ? ProxyEndpoint::unix_socket("") : proxy_endpoint(peer.ip, peer.port);
  error_code ec;
  const auto local = conn.socket().local_endpoint(ec);
  const ProxyEndpoint destination = ec ? ProxyEndpoint{} : proxy_endpoint(local);
  return version == SendProxy::v1 ? build_proxy_v1(source, destination) : build_proxy_v2(source, destination);
}

std::string describe_failure(const error_code& ec, Duration timeout) {
  if (ec == asio::error::timed_out) return fmt::format("timed out after {}", format_duration(timeout));
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
  }

  asio::awaitable<void> serve(Connection& conn) override {
    const auto executor = conn.socket().get_executor();
    UpstreamSocket upstream(executor);
    // A shutdown or a reload's drain closes the client socket; this ends
    // whatever the connection waits for on the upstream's side.
    asio::steady_timer stop(executor, clock::time_point::max());
    bool stopped = false;
    conn.on_close([&] {
      stopped = true;
      stop.cancel();
      error_code ignored;
      upstream.close(ignored);
    });

    const Upstream* reached = co_await connect(conn, upstream, stop, stopped);
    if (reached == nullptr) co_return;
    error_code ec;
    upstream.non_blocking(true, ec);
    if (reached->kind != Upstream::Kind::unix_path) upstream.set_option(asio::ip::tcp::no_delay(true), ec);

    if (send_proxy_ != SendProxy::none) {
      const auto header = proxy_header(conn, send_proxy_);
      ec = co_await write_all(upstream, asio::buffer(header));
      if (ec) {
        conn.log(debug, "sending the PROXY header to {} failed: {}", reached->text, ec.message());
        co_return;
      }
    }

    const auto started = clock::now();
    const RelayResult result = co_await relay(conn.socket(), upstream, {conn.idle_timeout(), conn.session_deadline()});
    // Worded as the listener words the timeouts it enforces itself.
    if (result.idle_expired) {
      conn.log(spdlog::level::info, "closed: timed out (idle_timeout {}, no data in either direction)",
               format_duration(conn.idle_timeout()));
    } else if (result.deadline_passed) {
      conn.log(spdlog::level::info, "closed: timed out (session_timeout)");
    }
    if (conn.should_log(debug)) {
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started);
      conn.log(debug, "relayed {} bytes to {} and {} bytes back in {}ms{}{}", result.client_to_upstream,
               reached->text, result.upstream_to_client, took.count(), result.error && !stopped ? "; " : "",
               result.error && !stopped ? result.error.message() : "");
    }
  }

 private:
  // Tries each upstream once, starting one further along the list for
  // every connection. Returns the one connected to, or nullptr.
  asio::awaitable<const Upstream*> connect(Connection& conn, UpstreamSocket& socket, asio::steady_timer& stop,
                                           const bool& stopped) {
    std::string failures;
    const std::size_t first = next_++ % upstreams_.size();
    for (std::size_t i = 0; i < upstreams_.size(); ++i) {
      const Upstream& upstream = upstreams_[(first + i) % upstreams_.size()];
      auto result = co_await (connect_upstream(upstream, socket, connect_timeout_) || stop.async_wait(use_tuple));
      if (stopped || result.index() != 0) co_return nullptr;
      const error_code ec = std::get<0>(result);
      if (!ec) {
        conn.log(debug, "connected to upstream {}", upstream.text);
        co_return &upstream;
      }
      const std::string why = describe_failure(ec, connect_timeout_);
      conn.log(debug, "upstream {} failed: {}", upstream.text, why);
      failures += fmt::format("{}{} ({})", failures.empty() ? "" : ", ", upstream.text, why);
    }
    conn.log(spdlog::level::warn, "no upstream reachable: {}", failures);
    co_return nullptr;
  }

  std::vector<Upstream> upstreams_;
  Duration connect_timeout_;
  SendProxy send_proxy_ = SendProxy::none;
  std::size_t next_ = 0;  // round-robin position; one io_context thread, so no atomics
};

void validate(const Options& options, Diagnostics& errors) {
  const auto& list = options.string_list("upstream");
  if (list.empty()) errors.error(options.position("upstream"), "\"upstream\" needs at least one address");
  for (const auto& text : list) {
    std::string error;
    if (!parse_upstream(text, error)) errors.error(options.position("upstream"), error);
  }
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
          },
      .create = [](const Options& options) { return std::make_unique<Proxy>(options); },
      .validate = validate,
  };
}

}  // namespace portico::handlers
