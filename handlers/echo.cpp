#include "echo.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <fmt/format.h>
#include <boost/asio/error.hpp>

#include <portico/connection.hpp>
#include <portico/io.hpp>
#include <portico/probe.hpp>

namespace portico::handlers {

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using spdlog::level::debug;

constexpr std::size_t scratch_size = 16 * 1024;
// Full reads echoed per wake-up: a client that sends without pause still
// goes back through the reactor regularly, so it cannot keep the thread
// from the other connections.
constexpr int reads_per_wakeup = 8;

// What one echo_available() pass did. `ec` is eof, a read or write failure,
// or empty when the pass stopped because there was nothing more to do now.
struct Pass {
  error_code ec;
  std::uint64_t received = 0;
  std::uint64_t sent = 0;
};

// Sends what the socket takes of `data[0, n)` now; the rest is copied to
// `rest`. Adds what went to `sent`; a failure other than a full send queue
// is returned.
error_code send_now(Connection& conn, const char* data, std::size_t n, std::vector<char>& rest, std::uint64_t& sent) {
  error_code ec;
  std::size_t taken = conn.try_write(asio::buffer(data, n), ec);
  if (ec && !would_block(ec)) return ec;
  if (ec) taken = 0;
  sent += taken;
  if (taken < n) rest.assign(data + taken, data + n);
  return {};
}

// Sends back what the client sent, without suspending, through a buffer
// shared by every connection of the thread.
// Stops when the receive queue is empty, after reads_per_wakeup full reads,
// at EOF or an error, or when the send queue is full: the bytes it did not
// take are copied to `rest`, the only buffer a connection ever owns, and
// then only until they are sent.
Pass echo_available(Connection& conn, std::vector<char>& rest) {
  thread_local std::array<char, scratch_size> scratch;
  Pass pass;
  for (int reads = 0; reads < reads_per_wakeup; ++reads) {
    error_code ec;
    const std::size_t n = conn.try_read(asio::buffer(scratch), ec);
    if (ec) {
      if (!would_block(ec)) pass.ec = ec;
      return pass;
    }
    pass.received += n;
    pass.ec = send_now(conn, scratch.data(), n, rest, pass.sent);
    if (pass.ec || !rest.empty()) return pass;
    // A short read emptied the receive queue: another would only block.
    if (n < scratch.size()) return pass;
  }
  return pass;
}

// What a connection that has talked reads into while it waits: enough for a
// line or a small request, so that the usual exchange takes one read by the
// reactor and one send. A connection that never sent anything holds none.
constexpr std::size_t held_size = 2 * 1024;

class Echo final : public Handler {
 public:
  // Nothing happens before the client sends: until then the connection
  // waits without a coroutine.
  std::optional<Duration> client_speaks_first() const override { return Duration{0}; }

  asio::awaitable<void> serve(Connection& conn) override {
    conn.log(debug, "connection from {}", conn.peer());
    std::uint64_t received = 0;
    std::uint64_t sent = 0;
    const auto finish = [&](std::string_view why, const error_code& ec = {}) {
      if (!conn.should_log(debug)) return;
      conn.log(debug, "{}{}{}; echoed {} of {} bytes received, closing the connection", why, ec ? ": " : "",
               ec ? ec.message() : "", sent, received);
    };
    std::unique_ptr<char[]> held;
    for (;;) {
      error_code ended;
      std::vector<char> rest;
      if (!held) {
        // Nothing received yet: wait without a buffer.
        const IoResult ready = co_await conn.wait_readable();
        if (!ready.ok()) {
          finish("waiting to read failed", ready.ec);
          co_return;
        }
      } else {
        const IoResult got = co_await conn.receive(asio::buffer(held.get(), held_size));
        received += got.bytes;
        if (!got.ok()) {
          finish(got.ec == asio::error::eof ? "client closed its side" : "connection failed",
                 got.ec == asio::error::eof ? error_code() : got.ec);
          co_return;
        }
        if (const error_code ec = send_now(conn, held.get(), got.bytes, rest, sent)) {
          finish("write failed", ec);
          co_return;
        }
        // A read that emptied the socket, all sent: back to waiting.
        if (rest.empty() && got.bytes < held_size) continue;
      }
      if (rest.empty()) {
        const Pass pass = echo_available(conn, rest);
        received += pass.received;
        sent += pass.sent;
        ended = pass.ec;
      }
      if (!rest.empty()) {
        // The client is not keeping up: nothing more is read until it takes
        // these bytes, so its sending fills its own buffers, not ours.
        const IoResult written = co_await conn.write(asio::buffer(rest));
        sent += written.bytes;
        if (!written.ok()) {
          finish("write failed", written.ec);
          co_return;
        }
      }
      if (ended == asio::error::eof) {
        // Everything received was sent back; closing ends the client's read
        // side too.
        finish("client closed its side");
        co_return;
      }
      if (ended) {
        finish("connection failed", ended);
        co_return;
      }
      if (!held && received > 0) held = std::make_unique<char[]>(held_size);
    }
  }
};

// Sends a line that names the moment it was made and expects it back.
asio::awaitable<Result<std::string>> probe(const ProbeTarget& target) {
  auto stream = co_await connect_probe(target);
  if (!stream) co_return stream.error();
  const std::string line = fmt::format(
      "portico probe {}\n", std::chrono::steady_clock::now().time_since_epoch().count());
  const IoResult sent = co_await (*stream)->write(asio::buffer(line));
  if (!sent.ok()) co_return fail("cannot send {}: {}", probe_excerpt(line), sent.ec.message());
  auto got = co_await probe_read_exactly(**stream, line.size());
  if (!got) co_return fail("sent {}: {}", probe_excerpt(line), got.error().message());
  if (*got != line) co_return fail("sent {}, got {} back", probe_excerpt(line), probe_excerpt(*got));
  co_return fmt::format("sent back {} bytes as sent", line.size());
}

}  // namespace

HandlerType echo_type() {
  return HandlerType{
      .name = "echo",
      .doc = "send back every byte the client sends until it closes (RFC 862)",
      .options = {},
      .create = [](const Options&) { return std::make_unique<Echo>(); },
      .probe = probe,
  };
}

}  // namespace portico::handlers
