// Admission's pure logic, apart from any socket: the token bucket behind
// `rate`/`burst`, the per-source counter behind `max_per_source`, and the
// allow/deny check. Time is injected, so nothing here waits.

#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <portico/cidr.hpp>
#include <portico/config.hpp>

#include "core/admission.hpp"

using namespace std::chrono_literals;
using portico::IpBytes;
using portico::TokenBucket;

namespace {

IpBytes ip(const std::string& text) {
  const auto parsed = portico::parse_ip(text);
  REQUIRE(parsed.has_value());
  return *parsed;
}

std::vector<portico::Cidr> rules(const std::vector<std::string>& texts) {
  std::vector<portico::Cidr> out;
  for (const auto& text : texts) {
    auto rule = portico::parse_cidr(text);
    INFO((rule ? std::string() : rule.error().message()));
    REQUIRE(rule.has_value());
    out.push_back(std::move(*rule));
  }
  return out;
}

// How many tokens the bucket hands out at `now`, taking until it refuses.
int drain(TokenBucket& bucket, std::size_t rate, std::size_t burst, TokenBucket::clock::time_point now) {
  int taken = 0;
  while (taken < 1000 && bucket.take(rate, burst, now)) ++taken;
  return taken;
}

}  // namespace

TEST_CASE("a token bucket starts full with burst tokens", "[admission][rate]") {
  TokenBucket bucket;
  const auto t0 = TokenBucket::clock::now();
  CHECK(drain(bucket, 1, 3, t0) == 3);
  // Empty: still nothing in the same instant.
  CHECK_FALSE(bucket.take(1, 3, t0));
}

TEST_CASE("a token bucket refills at rate tokens per second", "[admission][rate]") {
  TokenBucket bucket;
  const auto t0 = TokenBucket::clock::now();
  REQUIRE(drain(bucket, 2, 4, t0) == 4);
  // 2/s: a token every 500ms, none before.
  CHECK_FALSE(bucket.take(2, 4, t0 + 499ms));
  CHECK(bucket.take(2, 4, t0 + 500ms));
  CHECK_FALSE(bucket.take(2, 4, t0 + 500ms));
  // A second later: two more.
  CHECK(drain(bucket, 2, 4, t0 + 1500ms) == 2);
}

TEST_CASE("a token bucket never holds more than burst, however long it rests", "[admission][rate]") {
  TokenBucket bucket;
  const auto t0 = TokenBucket::clock::now();
  REQUIRE(drain(bucket, 10, 5, t0) == 5);
  CHECK(drain(bucket, 10, 5, t0 + 1h) == 5);
}

TEST_CASE("a token bucket with burst 0 holds rate tokens", "[admission][rate]") {
  TokenBucket bucket;
  const auto t0 = TokenBucket::clock::now();
  CHECK(drain(bucket, 3, 0, t0) == 3);
  CHECK(drain(bucket, 3, 0, t0 + 10s) == 3);
  CHECK(drain(bucket, 3, 0, t0 + 10s + 334ms) == 1);
}

TEST_CASE("max_per_source counts per prefix: /24 groups 10.0.0.1 with 10.0.0.200", "[admission][per-source]") {
  portico::ListenerConfig config;
  config.max_per_source = 2;
  config.source_prefix_v4 = 24;
  portico::SourceCounter counter;

  const auto a = counter.acquire(ip("10.0.0.1"), config);
  REQUIRE(a);
  CHECK(a->v4);
  CHECK(a->bytes == ip("10.0.0.0").bytes);
  const auto b = counter.acquire(ip("10.0.0.200"), config);
  REQUIRE(b);
  CHECK(b->bytes == a->bytes);
  CHECK(counter.sources() == 1);
  // The /24 is full; the next /24 is another source.
  CHECK_FALSE(counter.acquire(ip("10.0.0.77"), config));
  CHECK(counter.acquire(ip("10.0.1.1"), config));
  CHECK(counter.sources() == 2);
}

TEST_CASE("max_per_source /32 by default: every IPv4 address is its own source", "[admission][per-source]") {
  portico::ListenerConfig config;
  config.max_per_source = 1;
  portico::SourceCounter counter;
  CHECK(counter.acquire(ip("192.0.2.1"), config));
  CHECK(counter.acquire(ip("192.0.2.2"), config));
  CHECK_FALSE(counter.acquire(ip("192.0.2.1"), config));
  CHECK(counter.sources() == 2);
}

TEST_CASE("a refused acquire takes nothing, and release frees the slot", "[admission][per-source]") {
  portico::ListenerConfig config;
  config.max_per_source = 2;
  portico::SourceCounter counter;
  const auto first = counter.acquire(ip("198.51.100.4"), config);
  const auto second = counter.acquire(ip("198.51.100.4"), config);
  REQUIRE(first);
  REQUIRE(second);
  // Refused many times: still exactly one slot to give back each time.
  for (int i = 0; i < 5; ++i) CHECK_FALSE(counter.acquire(ip("198.51.100.4"), config));
  counter.release(*first);
  const auto third = counter.acquire(ip("198.51.100.4"), config);
  CHECK(third);
  CHECK_FALSE(counter.acquire(ip("198.51.100.4"), config));
  counter.release(*second);
  counter.release(*third);
  CHECK(counter.sources() == 0);
  // Releasing what is not held changes nothing.
  counter.release(*first);
  CHECK(counter.sources() == 0);
  CHECK(counter.acquire(ip("198.51.100.4"), config));
  CHECK(counter.acquire(ip("198.51.100.4"), config));
  CHECK_FALSE(counter.acquire(ip("198.51.100.4"), config));
}

TEST_CASE("max_per_source groups IPv6 clients by source_prefix_v6 (/64 by default)", "[admission][per-source]") {
  portico::ListenerConfig config;
  config.max_per_source = 2;
  portico::SourceCounter counter;
  const auto a = counter.acquire(ip("2001:db8:0:1::1"), config);
  REQUIRE(a);
  CHECK_FALSE(a->v4);
  CHECK(a->bytes == ip("2001:db8:0:1::").bytes);
  CHECK(counter.acquire(ip("2001:db8:0:1:ffff:ffff:ffff:ffff"), config));
  CHECK_FALSE(counter.acquire(ip("2001:db8:0:1::42"), config));
  CHECK(counter.acquire(ip("2001:db8:0:2::1"), config));

  config.source_prefix_v6 = 48;
  portico::SourceCounter wide;
  CHECK(wide.acquire(ip("2001:db8:0:1::1"), config));
  CHECK(wide.acquire(ip("2001:db8:0:2::1"), config));
  CHECK_FALSE(wide.acquire(ip("2001:db8:0:3::1"), config));
}

TEST_CASE("an IPv4-mapped IPv6 client counts as its IPv4 address", "[admission][per-source]") {
  portico::ListenerConfig config;
  config.max_per_source = 2;
  config.source_prefix_v4 = 24;
  config.source_prefix_v6 = 128;
  portico::SourceCounter counter;
  // As a dual-stack listener sees them.
  const auto mapped = portico::ip_bytes(boost::asio::ip::make_address("::ffff:10.0.0.1"));
  const auto a = counter.acquire(mapped, config);
  REQUIRE(a);
  CHECK(a->v4);
  CHECK(a->bytes == ip("10.0.0.0").bytes);
  CHECK(counter.acquire(ip("10.0.0.9"), config));
  CHECK_FALSE(counter.acquire(ip("::ffff:10.0.0.200"), config));
  CHECK(counter.sources() == 1);
}

TEST_CASE("check_access: no rules allow everyone", "[admission][access]") {
  const portico::ListenerConfig config;
  CHECK(portico::check_access(config, ip("203.0.113.1")).allowed);
  CHECK(portico::check_access(config, ip("2001:db8::1")).allowed);
}

TEST_CASE("check_access: an empty allow list with deny rules allows all but the denied", "[admission][access]") {
  portico::ListenerConfig config;
  config.deny = rules({"10.0.0.0/8", "2001:db8::/32"});
  CHECK(portico::check_access(config, ip("192.0.2.1")).allowed);
  CHECK(portico::check_access(config, ip("2001:db9::1")).allowed);
  const auto denied = portico::check_access(config, ip("10.9.8.7"));
  CHECK_FALSE(denied.allowed);
  CHECK(denied.reason == "denied by 10.0.0.0/8");
  const auto denied6 = portico::check_access(config, ip("2001:db8:5::1"));
  CHECK_FALSE(denied6.allowed);
  CHECK(denied6.reason == "denied by 2001:db8::/32");
}

TEST_CASE("check_access: deny wins over allow", "[admission][access]") {
  portico::ListenerConfig config;
  config.allow = rules({"10.0.0.0/8"});
  config.deny = rules({"10.0.0.0/24", "10.0.0.7"});
  CHECK(portico::check_access(config, ip("10.1.0.1")).allowed);
  const auto verdict = portico::check_access(config, ip("10.0.0.7"));
  CHECK_FALSE(verdict.allowed);
  // The first deny rule that matches is named.
  CHECK(verdict.reason == "denied by 10.0.0.0/24");
}

TEST_CASE("check_access: a non-empty allow list refuses the rest", "[admission][access]") {
  portico::ListenerConfig config;
  config.allow = rules({"192.0.2.0/24", "2001:db8::/64"});
  CHECK(portico::check_access(config, ip("192.0.2.200")).allowed);
  CHECK(portico::check_access(config, ip("2001:db8::abcd")).allowed);
  for (const char* outside : {"192.0.3.1", "2001:db8:0:1::1", "127.0.0.1", "::1"}) {
    INFO(outside);
    const auto verdict = portico::check_access(config, ip(outside));
    CHECK_FALSE(verdict.allowed);
    CHECK(verdict.reason == "not in the allow list");
  }
}

TEST_CASE("check_access: IPv4-mapped clients match IPv4 rules, never IPv6 ones", "[admission][access]") {
  portico::ListenerConfig config;
  config.allow = rules({"127.0.0.0/8"});
  const auto mapped = portico::ip_bytes(boost::asio::ip::make_address("::ffff:127.0.0.5"));
  CHECK(portico::check_access(config, mapped).allowed);

  // A rule written as a mapped prefix is an IPv4 rule.
  portico::ListenerConfig deny_mapped;
  deny_mapped.deny = rules({"::ffff:127.0.0.0/104"});
  const auto verdict = portico::check_access(deny_mapped, ip("127.0.0.1"));
  CHECK_FALSE(verdict.allowed);
  CHECK(verdict.reason == "denied by ::ffff:127.0.0.0/104");

  // "::/0" covers IPv6 clients only: a mapped client is an IPv4 one.
  portico::ListenerConfig v6_only;
  v6_only.allow = rules({"::/0"});
  CHECK(portico::check_access(v6_only, ip("2001:db8::1")).allowed);
  CHECK_FALSE(portico::check_access(v6_only, mapped).allowed);
}
