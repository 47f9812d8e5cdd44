#include "time.hpp"

#include <array>
#include <chrono>
#include <cstdint>

#include <boost/asio/buffer.hpp>
#include <fmt/format.h>

#include <portico/connection.hpp>
#include <portico/probe.hpp>

namespace portico::handlers {

namespace {

namespace asio = boost::asio;
using spdlog::level::debug;

// Seconds from 1900-01-01T00:00:00Z, RFC 868's epoch, to the Unix epoch.
constexpr std::int64_t seconds_1900_to_1970 = 2208988800;

class Time final : public Handler {
 public:
  asio::awaitable<void> serve(Connection& conn) override {
    conn.log(debug, "connection from {}", conn.peer());
    const auto unix_seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    // The count wraps modulo 2^32 (in 2036), as the RFC's 32 bits must.
    const auto value = static_cast<std::uint32_t>(unix_seconds + seconds_1900_to_1970);
    const std::array<unsigned char, 4> big_endian = {
        static_cast<unsigned char>(value >> 24), static_cast<unsigned char>(value >> 16),
        static_cast<unsigned char>(value >> 8), static_cast<unsigned char>(value)};
    conn.log(debug, "sending {}", value);
    const IoResult written = co_await conn.write(asio::buffer(big_endian));
    if (!written.ok()) {
      conn.log(debug, "write failed: {}", written.ec.message());
      co_return;
    }
    conn.log(debug, "closing the connection");
  }
};

// Expects 4 bytes, then the close, naming a time within a minute of this
// host's clock (which the handler reads too).
asio::awaitable<Result<std::string>> probe(const ProbeTarget& target) {
  auto stream = co_await connect_probe(target);
  if (!stream) co_return stream.error();
  auto got = co_await probe_read_all(**stream, 4);
  if (!got) co_return got.error();
  if (got->size() != 4) co_return fail("expected 4 bytes, got {}", probe_excerpt(*got));
  std::uint32_t value = 0;
  for (const char c : *got) value = (value << 8) | static_cast<unsigned char>(c);
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const auto expected = static_cast<std::uint32_t>(now + seconds_1900_to_1970);
  // The difference modulo 2^32, as a signed number of seconds.
  const auto off = static_cast<std::int32_t>(value - expected);
  if (off > 60 || off < -60) co_return fail("answered {}, {}s away from this host's clock", value, off);
  co_return fmt::format("answered {} (seconds since 1900)", value);
}

}  // namespace

HandlerType time_type() {
  return HandlerType{
      .name = "time",
      .doc = "send the seconds since 1900-01-01 UTC as 4 bytes, big-endian, then close (RFC 868)",
      .options = {},
      .create = [](const Options&) { return std::make_unique<Time>(); },
      .probe = probe,
  };
}

}  // namespace portico::handlers
