#include "discard.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>

#include <portico/connection.hpp>
#include <portico/io.hpp>

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

}  // namespace

HandlerType discard_type() {
  return HandlerType{
      .name = "discard",
      .doc = "read and drop whatever the client sends until it closes (RFC 863)",
      .options = {},
      .create = [](const Options&) { return std::make_unique<Discard>(); },
  };
}

}  // namespace portico::handlers
