// The histogram's percentiles: exact where values are small, within the
// bucket precision (1/128) elsewhere, and sane at the edges.

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>

#include "histogram.hpp"

using bench::Histogram;

namespace {
// Largest relative error a bucket may introduce.
constexpr double kPrecision = 1.0 / Histogram::kSubCount;
}  // namespace

TEST_CASE("empty histogram reports zeros", "[histogram]") {
  Histogram h;
  CHECK(h.count() == 0);
  CHECK(h.value_at_percentile(50) == 0);
  CHECK(h.value_at_percentile(100) == 0);
  CHECK(h.max() == 0);
  CHECK(h.min() == 0);
  CHECK(h.mean() == 0.0);
}

TEST_CASE("a single value is every percentile", "[histogram]") {
  Histogram h;
  h.record(123456);
  for (double p : {0.0, 1.0, 50.0, 99.0, 99.99, 100.0}) CHECK(h.value_at_percentile(p) == 123456);
  CHECK(h.min() == 123456);
  CHECK(h.max() == 123456);
}

TEST_CASE("small values are exact", "[histogram]") {
  Histogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  CHECK(h.value_at_percentile(50) == 50);
  CHECK(h.value_at_percentile(90) == 90);
  CHECK(h.value_at_percentile(99) == 99);
  CHECK(h.value_at_percentile(100) == 100);
  CHECK(h.value_at_percentile(0) == 1);
  CHECK(h.mean() == Approx(50.5));
}

TEST_CASE("percentiles of a uniform spread are within bucket precision", "[histogram]") {
  Histogram h;
  constexpr std::uint64_t n = 1'000'000;
  for (std::uint64_t v = 1; v <= n; ++v) h.record(v * 1000);  // 1 µs .. 1 s in ns
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const double want = p / 100.0 * n * 1000;
    const auto got = static_cast<double>(h.value_at_percentile(p));
    INFO("p" << p << " want " << want << " got " << got);
    CHECK(got >= want);
    CHECK(got <= want * (1 + kPrecision));
  }
  CHECK(h.max() == n * 1000);
  CHECK(h.value_at_percentile(100) == n * 1000);
}

TEST_CASE("a slow tail shows in p99 but not p50", "[histogram]") {
  Histogram h;
  for (int i = 0; i < 980; ++i) h.record(100'000);    // 100 µs
  for (int i = 0; i < 20; ++i) h.record(50'000'000);  // 50 ms
  CHECK(h.value_at_percentile(50) == Approx(100'000).epsilon(kPrecision));
  CHECK(h.value_at_percentile(98) == Approx(100'000).epsilon(kPrecision));
  CHECK(h.value_at_percentile(99) == Approx(50'000'000).epsilon(kPrecision));
  CHECK(h.max() == 50'000'000);
}

TEST_CASE("percentiles never decrease and stay within min and max", "[histogram]") {
  Histogram h;
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(11.0, 1.5);  // around 60 µs, long tail
  for (int i = 0; i < 100'000; ++i) h.record(static_cast<std::uint64_t>(dist(rng)));
  std::uint64_t last = 0;
  for (double p = 0; p <= 100; p += 0.5) {
    const auto v = h.value_at_percentile(p);
    CHECK(v >= last);
    CHECK(v >= h.min());
    CHECK(v <= h.max());
    last = v;
  }
}

TEST_CASE("bucket bounds cover every value with bounded error", "[histogram]") {
  for (std::uint64_t v : {std::uint64_t{0}, std::uint64_t{127}, std::uint64_t{128}, std::uint64_t{255},
                          std::uint64_t{256}, std::uint64_t{1'000'003}, std::uint64_t{1} << 40,
                          (std::uint64_t{1} << 63) + 12345, UINT64_MAX}) {
    const auto b = Histogram::bucket_of(v);
    INFO("value " << v << " bucket " << b);
    CHECK(Histogram::bucket_low(b) <= v);
    CHECK(Histogram::bucket_high(b) >= v);
    const auto width = Histogram::bucket_high(b) - Histogram::bucket_low(b);
    CHECK(static_cast<double>(width) <= static_cast<double>(Histogram::bucket_low(b)) * kPrecision);
  }
  // Neighbouring buckets meet without gaps.
  for (std::size_t b = 0; b + 1 < Histogram::kSubCount * 20; ++b) {
    CHECK(Histogram::bucket_high(b) + 1 == Histogram::bucket_low(b + 1));
  }
}

TEST_CASE("huge values are recorded", "[histogram]") {
  Histogram h;
  h.record(UINT64_MAX);
  h.record(1);
  CHECK(h.value_at_percentile(100) == UINT64_MAX);
  CHECK(h.value_at_percentile(50) == 1);
}

TEST_CASE("reset forgets everything", "[histogram]") {
  Histogram h;
  h.record(5);
  h.record(500'000);
  h.reset();
  CHECK(h.count() == 0);
  CHECK(h.max() == 0);
  h.record(7);
  CHECK(h.value_at_percentile(50) == 7);
  CHECK(h.min() == 7);
}
