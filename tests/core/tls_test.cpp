// The library's TLS pieces that no client can see directly: the rotation of
// session ticket keys.

#include <chrono>

#include <catch2/catch.hpp>

#include "core/tls.hpp"

using namespace std::chrono_literals;
using portico::detail::TicketKey;
using portico::detail::TicketKeys;

TEST_CASE("ticket keys rotate every period and decrypt for two more", "[tls]") {
  TicketKeys keys;
  const auto t0 = std::chrono::steady_clock::time_point() + 100h;
  TicketKey first;
  REQUIRE(keys.current(t0, first));
  TicketKey again;
  REQUIRE(keys.current(t0 + 59min, again));
  CHECK(again.name == first.name);

  TicketKey second;
  REQUIRE(keys.current(t0 + 61min, second));
  CHECK(second.name != first.name);
  CHECK(second.aes != first.aes);
  CHECK(second.hmac != first.hmac);

  // A ticket of the first key still resumes, and asks for a new ticket.
  TicketKey found;
  bool renew = false;
  REQUIRE(keys.find(first.name.data(), found, renew));
  CHECK(renew);
  CHECK(found.aes == first.aes);
  REQUIRE(keys.find(second.name.data(), found, renew));
  CHECK_FALSE(renew);

  TicketKey third;
  REQUIRE(keys.current(t0 + 122min, third));
  CHECK(keys.find(first.name.data(), found, renew));
  TicketKey fourth;
  REQUIRE(keys.current(t0 + 183min, fourth));
  // Three keys are kept: the first is gone, its tickets give full handshakes.
  CHECK_FALSE(keys.find(first.name.data(), found, renew));
  CHECK(keys.find(second.name.data(), found, renew));
}
