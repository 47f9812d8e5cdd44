#include "time.hpp"

#include <array>
#include <chrono>
#include <cstdint>

#include <boost/asio/buffer.hpp>

#include <portico/connection.hpp>

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

}  // namespace

HandlerType time_type() {
  return HandlerType{
      .name = "time",
      .doc = "send the seconds since 1900-01-01 UTC as 4 bytes, big-endian, then close (RFC 868)",
      .options = {},
      .create = [](const Options&) { return std::make_unique<Time>(); },
  };
}

}  // namespace portico::handlers
