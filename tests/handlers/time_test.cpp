// The time handler (RFC 868), driven through the real porticod over
// 127.0.0.1.

#include <chrono>
#include <cstdint>

#include <catch2/catch.hpp>

#include "handlers/service_support.hpp"
#include "support/daemon.hpp"

using namespace portico::test;

TEST_CASE("time sends 4 bytes: seconds since 1900, big-endian, then closes", "[handlers][time]") {
  auto d = Daemon::start(service_config("time"));
  Client c(d.port());
  bool closed = false;
  const std::string got = c.read_all(5s, &closed);
  const auto unix_now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(closed);
  REQUIRE(got.size() == 4);

  std::uint32_t value = 0;
  for (const char byte : got) value = (value << 8) | static_cast<unsigned char>(byte);
  // Modulo 2^32, as the 32-bit count is.
  const auto expected = static_cast<std::uint32_t>(unix_now + 2208988800LL);
  const auto difference = static_cast<std::int32_t>(value - expected);
  INFO("received " << value << ", expected about " << expected);
  CHECK(difference >= -2);
  CHECK(difference <= 2);
}
