#include <portico/probe.hpp>

#include <vector>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include <portico/io.hpp>
#include <portico/proxy_protocol.hpp>
#include <portico/text.hpp>
#include <portico/tls.hpp>

namespace portico {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

std::string describe(const IoResult& result, Duration timeout) {
  if (result.timed_out()) return fmt::format("no answer within {}", format_duration(timeout));
  if (result.ec == asio::error::eof) return "the server closed the connection";
  return result.ec.message();
}

}  // namespace

asio::awaitable<Result<std::unique_ptr<Stream>>> connect_probe(const ProbeTarget& target) {
  using Socket = asio::generic::stream_protocol::socket;
  const auto deadline = Stream::clock::now() + target.timeout;
  Socket socket(target.executor);
  Socket::endpoint_type endpoint;
  if (target.address.is_unix) {
    endpoint = asio::local::stream_protocol::endpoint(target.address.path);
  } else {
    endpoint = asio::ip::tcp::endpoint(target.address.ip, target.address.port);
  }
  asio::steady_timer timer(target.executor, deadline);
  auto connected = co_await (socket.async_connect(endpoint, use_tuple) || timer.async_wait(use_tuple));
  if (connected.index() == 1) {
    co_return fail("cannot connect to {}: no answer within {}", target.address, format_duration(target.timeout));
  }
  if (const auto [ec] = std::get<0>(connected); ec) {
    co_return fail("cannot connect to {}: {}", target.address, ec.message());
  }
  auto stream = std::make_unique<Stream>(std::move(socket));
  stream->set_deadline(deadline);
  if (target.proxy_protocol) {
    const auto header = build_proxy_v2({}, {}, ProxyCommand::local);
    const IoResult sent = co_await stream->write(asio::buffer(header));
    if (!sent.ok()) co_return fail("cannot send the PROXY header: {}", describe(sent, target.timeout));
  }
  if (target.tls) {
    // Made per probe: probes are rare, and a listener's tls_alpn may change
    // with each reload.
    TlsClientSettings settings;
    settings.verify = false;
    settings.alpn = target.tls_alpn;
    auto context = TlsClientContext::create(settings);
    if (!context) co_return fail("cannot make a TLS client: {}", context.error().message());
    const IoResult shook = co_await stream->start_tls(**context, "");
    if (!shook.ok()) co_return fail("TLS handshake failed: {}", describe(shook, target.timeout));
  }
  co_return stream;
}

asio::awaitable<Result<std::string>> probe_read_all(Stream& stream, std::size_t limit) {
  std::string data;
  std::vector<char> chunk(4096);
  for (;;) {
    const IoResult read = co_await stream.read_some(asio::buffer(chunk));
    if (read.ec == asio::error::eof) co_return data;
    if (!read.ok()) {
      if (read.timed_out()) {
        co_return fail("the server did not close the connection in time{}",
                       data.empty() ? std::string() : fmt::format(" (after {})", probe_excerpt(data)));
      }
      co_return fail("read failed: {}", read.ec.message());
    }
    data.append(chunk.data(), read.bytes);
    if (data.size() > limit) co_return fail("more than {} bytes came: {}", limit, probe_excerpt(data));
  }
}

asio::awaitable<Result<std::string>> probe_read_exactly(Stream& stream, std::size_t size) {
  std::string data(size, '\0');
  std::size_t got = 0;
  while (got < size) {
    const IoResult read = co_await stream.read_some(asio::buffer(data.data() + got, size - got));
    if (!read.ok()) {
      const std::string seen = got == 0 ? "nothing" : probe_excerpt(std::string_view(data.data(), got));
      if (read.ec == asio::error::eof) co_return fail("the server closed the connection after {}", seen);
      if (read.timed_out()) co_return fail("no full answer in time: {} of {} bytes ({})", got, size, seen);
      co_return fail("read failed: {}", read.ec.message());
    }
    got += read.bytes;
  }
  co_return data;
}

std::string probe_excerpt(std::string_view bytes, std::size_t limit) {
  if (bytes.size() <= limit) return quote_text(bytes);
  return fmt::format("{}... ({} bytes)", quote_text(bytes.substr(0, limit)), bytes.size());
}

}  // namespace portico
