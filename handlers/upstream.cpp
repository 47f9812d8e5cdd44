#include "upstream.hpp"

#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include <portico/address.hpp>
#include <portico/io.hpp>
#include <portico/text.hpp>

namespace portico::handlers {

namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

// RFC 1123 names, plus '_' which container and service names use in
// practice. Only the syntax: whether it resolves is a question for run time.
bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '.') {
      if (label == 0 || name[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '_' && !(c == '-' && label > 0)) return false;
    if (++label > 63) return false;
  }
  return label > 0 && name.back() != '-';
}

// parse_address's messages, worded for an upstream (which, unlike a listen
// address, may be a host name).
Result<Address> parse_ip_or_unix(std::string_view text) {
  auto address = parse_address(text);
  if (address) return std::move(*address);
  std::string error = address.error().message();
  constexpr std::string_view prefix = "invalid address ";
  if (error.starts_with(prefix)) error = "invalid upstream " + error.substr(prefix.size());
  if (const auto note = error.find(" (host names are not accepted)"); note != std::string::npos) error.erase(note);
  return fail(std::move(error));
}

bool numeric_ipv4_like(std::string_view host) {
  return !host.empty() && host.find_first_not_of("0123456789.") == std::string_view::npos;
}

// One endpoint, bounded by `deadline`.
asio::awaitable<error_code> connect_one(UpstreamSocket& socket, const UpstreamSocket::endpoint_type& endpoint,
                                        clock::time_point deadline) {
  error_code ignored;
  socket.close(ignored);
  if (deadline == clock::time_point::max()) {
    auto [ec] = co_await socket.async_connect(endpoint, use_tuple);
    co_return ec;
  }
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  auto result = co_await (socket.async_connect(endpoint, use_tuple) || timer.async_wait(use_tuple));
  if (result.index() == 0) co_return std::get<0>(std::get<0>(result));
  // The timer ended first: by expiring, or because the caller was cancelled.
  socket.close(ignored);
  const auto [timer_ec] = std::get<1>(result);
  co_return timer_ec ? error_code(asio::error::operation_aborted) : error_code(asio::error::timed_out);
}

// Asio's resolver runs getaddrinfo on a private thread, and cancel() cannot
// interrupt a lookup in progress: its completion comes only when the lookup
// ends. So the coroutine waits on a timer of its own, which the completion
// cancels, and can walk away at the deadline; the shared state keeps the
// resolver alive until the lookup really ends.
struct PendingLookup {
  explicit PendingLookup(const asio::any_io_executor& executor) : resolver(executor), wake(executor) {}
  tcp::resolver resolver;
  asio::steady_timer wake;
  tcp::resolver::results_type results;
  error_code ec;
  bool done = false;
};

asio::awaitable<error_code> resolve(const Upstream& upstream, clock::time_point deadline,
                                    tcp::resolver::results_type& results) {
  auto lookup = std::make_shared<PendingLookup>(co_await asio::this_coro::executor);
  lookup->wake.expires_at(deadline);
  lookup->resolver.async_resolve(upstream.host, std::to_string(upstream.port), tcp::resolver::numeric_service,
                                 [lookup](error_code ec, tcp::resolver::results_type found) {
                                   lookup->ec = ec;
                                   lookup->results = std::move(found);
                                   lookup->done = true;
                                   lookup->wake.cancel();
                                 });
  co_await lookup->wake.async_wait(use_tuple);
  if (!lookup->done) {
    lookup->resolver.cancel();
    co_return clock::now() >= deadline ? error_code(asio::error::timed_out) : error_code(asio::error::operation_aborted);
  }
  results = std::move(lookup->results);
  co_return lookup->ec;
}

}  // namespace

Result<Upstream> parse_upstream(std::string_view text) {
  Upstream out;
  if (text.starts_with("unix:") || text.starts_with('[')) {
    auto address = parse_ip_or_unix(text);
    if (!address) return address.error();
    if (address->kind == Address::Kind::unix_path) {
      out.kind = Upstream::Kind::unix_path;
      out.path = address->path;
    } else {
      out.host = address->host;
      out.port = address->port;
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return fail("invalid upstream {}: missing port; expected \"host:port\", \"[ipv6]:port\" or \"unix:/path\"",
                  quote_text(text));
    }
    const std::string_view host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      return fail("invalid upstream {}: an IPv6 address needs brackets, e.g. \"[::1]:80\"", quote_text(text));
    }
    if (numeric_ipv4_like(host)) {
      auto address = parse_ip_or_unix(text);
      if (!address) return address.error();
      out.host = address->host;
      out.port = address->port;
    } else {
      // A name: borrow the address parser for the port by giving it a
      // placeholder IP.
      auto address = parse_address(fmt::format("0.0.0.0:{}", text.substr(colon + 1)));
      if (!address) {
        return fail("invalid upstream {}: port {} is not a number from 1 to 65535", quote_text(text),
                    quote_text(text.substr(colon + 1)));
      }
      if (!valid_host_name(host)) {
        return fail("invalid upstream {}: {} is neither an IP address nor a valid host name", quote_text(text),
                    quote_text(host));
      }
      out.kind = Upstream::Kind::host_name;
      out.host = std::string(host);
      out.port = address->port;
    }
  }
  if (out.kind != Upstream::Kind::unix_path && out.port == 0) {
    return fail("invalid upstream {}: port 0 cannot be connected to", quote_text(text));
  }
  switch (out.kind) {
    case Upstream::Kind::unix_path: out.text = "unix:" + out.path; break;
    case Upstream::Kind::ip:
      out.text = out.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", out.host, out.port)
                                                         : fmt::format("{}:{}", out.host, out.port);
      break;
    case Upstream::Kind::host_name: out.text = fmt::format("{}:{}", out.host, out.port); break;
  }
  return out;
}

asio::awaitable<error_code> connect_upstream(const Upstream& upstream, UpstreamSocket& socket, Duration timeout) {
  const auto deadline = timeout.count() > 0 ? clock::now() + timeout : clock::time_point::max();
  std::vector<UpstreamSocket::endpoint_type> endpoints;
  if (upstream.kind == Upstream::Kind::unix_path) {
    endpoints.emplace_back(asio::local::stream_protocol::endpoint(upstream.path));
  } else if (upstream.kind == Upstream::Kind::ip) {
    endpoints.emplace_back(tcp::endpoint(asio::ip::make_address(upstream.host), upstream.port));
  } else {
    tcp::resolver::results_type results;
    if (const error_code ec = co_await resolve(upstream, deadline, results)) co_return ec;
    for (const auto& entry : results) endpoints.emplace_back(entry.endpoint());
  }
  error_code ec = asio::error::host_not_found;
  for (const auto& endpoint : endpoints) {
    ec = co_await connect_one(socket, endpoint, deadline);
    if (!ec || ec == asio::error::timed_out || ec == asio::error::operation_aborted) break;
  }
  co_return ec;
}

}  // namespace portico::handlers
