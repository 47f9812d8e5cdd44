#include "discard.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

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
// Full reads per wake-up: a client that sends without pause still goes back
// through the reactor regularly, so it cannot keep the thread from the other
// connections.
constexpr int reads_per_wakeup = 16;

// Reads and drops what the client sent, without suspending, into a buffer
// shared by every connection of the thread.
// Returns eof, a read failure, or an empty code when it stopped for now;
// `dropped` grows by the bytes read.
error_code drain(Connection& conn, std::uint64_t& dropped) {
  thread_local std::array<char, scratch_size> scratch;
  for (int reads = 0; reads < reads_per_wakeup; ++reads) {
    error_code ec;
    const std::size_t n = conn.try_read(asio::buffer(scratch), ec);
    if (ec) return would_block(ec) ? error_code() : ec;
    dropped += n;
    // A short read emptied the receive queue: another would only block.
    if (n < scratch.size()) break;
  }
  return {};
}

class Discard final : public Handler {
 public:
  // Nothing happens before the client sends: until then the connection
  // waits without a coroutine.
  std::optional<Duration> client_speaks_first() const override { return Duration{0}; }

  asio::awaitable<void> serve(Connection& conn) override {
    conn.log(debug, "connection from {}", conn.peer());
    std::uint64_t dropped = 0;
    const auto finish = [&](std::string_view why, const error_code& ec = {}) {
      if (!conn.should_log(debug)) return;
      conn.log(debug, "{}{}{}; discarded {} bytes, closing the connection", why, ec ? ": " : "", ec ? ec.message() : "",
               dropped);
    };
    for (;;) {
      // Waiting holds no buffer: an idle connection costs only its frame.
      const IoResult ready = co_await conn.wait_readable();
      if (!ready.ok()) {
        finish("waiting to read failed", ready.ec);
        co_return;
      }
      const error_code ec = drain(conn, dropped);
      if (ec == asio::error::eof) {
        finish("client closed its side");
        co_return;
      }
      if (ec) {
        finish("read failed", ec);
        co_return;
      }
    }
  }
};

// Sends a line, then EOF: discard must read it, send nothing and close.
asio::awaitable<Result<std::string>> probe(const ProbeTarget& target) {
  auto stream = co_await connect_probe(target);
  if (!stream) co_return stream.error();
  constexpr std::string_view line = "portico probe\n";
  const IoResult sent = co_await (*stream)->write(asio::buffer(line));
  if (!sent.ok()) co_return fail("cannot send {}: {}", probe_excerpt(line), sent.ec.message());
  (*stream)->shutdown_send();
  auto got = co_await probe_read_all(**stream, 0);
  if (!got) co_return fail("sent {} and EOF: {}", probe_excerpt(line), got.error().message());
  co_return fmt::format("took {} bytes and closed without answering", line.size());
}

}  // namespace

HandlerType discard_type() {
  return HandlerType{
      .name = "discard",
      .doc = "read and drop whatever the client sends until it closes (RFC 863)",
      .options = {},
      .create = [](const Options&) { return std::make_unique<Discard>(); },
      .probe = probe,
  };
}

}  // namespace portico::handlers
