#include "chargen.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <portico/connection.hpp>
#include <portico/probe.hpp>

namespace portico::handlers {

namespace {

namespace asio = boost::asio;
using spdlog::level::debug;

// RFC 864's pattern: line i is the 72 characters starting at offset i of the
// cyclic sequence of the 95 printable ASCII characters (' ' to '~').
constexpr std::size_t printable_count = 95;
constexpr std::size_t line_width = 72;
constexpr std::size_t line_size = line_width + 2;  // with "\r\n"
constexpr std::size_t cycle_size = printable_count * line_size;

// The 95 distinct lines back to back: the stream is this table over and
// over, and any run of whole lines within one cycle is a single slice of it,
// shared by every connection.
constexpr std::array<char, cycle_size> make_cycle() {
  std::array<char, cycle_size> cycle{};
  for (std::size_t line = 0; line < printable_count; ++line) {
    char* out = cycle.data() + line * line_size;
    for (std::size_t i = 0; i < line_width; ++i) out[i] = static_cast<char>(' ' + (line + i) % printable_count);
    out[line_width] = '\r';
    out[line_width + 1] = '\n';
  }
  return cycle;
}
constexpr std::array<char, cycle_size> cycle = make_cycle();

// What the kernel may hold for the client: the stream goes out as fast as
// the client reads it, not as fast as the kernel's buffers (megabytes) fill.
constexpr std::size_t send_queue = 32 * 1024;
// Bytes sent between yields: a client that reads as fast as we write never
// makes a write wait, and would otherwise keep the thread from the other
// connections.
constexpr std::size_t bytes_per_turn = 256 * 1024;

class Chargen final : public Handler {
 public:
  explicit Chargen(const Options& options) : line_limit_(static_cast<std::uint64_t>(options.integer("line_limit"))) {}

  asio::awaitable<void> serve(Connection& conn) override {
    conn.log(debug, "connection from {}", conn.peer());
    conn.limit_send_queue(send_queue);
    std::uint64_t lines_sent = 0;
    std::uint64_t bytes_sent = 0;
    std::size_t bytes_this_turn = 0;
    for (;;) {
      const std::size_t first = lines_sent % printable_count;
      std::uint64_t lines = printable_count - first;
      if (line_limit_ > 0) lines = std::min(lines, line_limit_ - lines_sent);
      if (lines == 0) break;
      // Waits while the socket's buffer is full: the client's reading sets
      // the pace, and nothing is queued here.
      const IoResult written = co_await conn.write(asio::buffer(cycle.data() + first * line_size, lines * line_size));
      bytes_sent += written.bytes;
      if (!written.ok()) {
        // A reset or a broken pipe is how a client that hung up shows.
        conn.log(debug, "write failed: {}; sent {} bytes, closing the connection", written.ec.message(), bytes_sent);
        co_return;
      }
      lines_sent += lines;
      bytes_this_turn += written.bytes;
      if (bytes_this_turn >= bytes_per_turn) {
        bytes_this_turn = 0;
        co_await asio::post(conn.executor(), asio::use_awaitable);
      }
    }
    conn.log(debug, "sent {} lines ({} bytes), the line limit; closing the connection", lines_sent, bytes_sent);
  }

 private:
  std::uint64_t line_limit_;  // 0: no limit
};

// Expects the first line of the pattern (or fewer, up to line_limit lines).
asio::awaitable<Result<std::string>> probe(const ProbeTarget& target) {
  auto stream = co_await connect_probe(target);
  if (!stream) co_return stream.error();
  const std::string_view first(cycle.data(), line_size);
  auto got = co_await probe_read_exactly(**stream, line_size);
  if (!got) co_return fail("expected {}: {}", probe_excerpt(first, 80), got.error().message());
  if (*got != first) co_return fail("expected {}, got {}", probe_excerpt(first, 80), probe_excerpt(*got, 80));
  co_return std::string("sent the first line of the RFC 864 pattern");
}

}  // namespace

HandlerType chargen_type() {
  return HandlerType{
      .name = "chargen",
      .doc = "stream 72-character lines of rotating printable ASCII until the client closes (RFC 864)",
      .options =
          {
              {.name = "line_limit",
               .type = OptionType::integer,
               .default_value = std::int64_t{0},
               .doc = "close after sending this many lines; 0 streams until the client closes",
               .min = 0},
          },
      .create = [](const Options& options) { return std::make_unique<Chargen>(options); },
      .probe = probe,
  };
}

}  // namespace portico::handlers
