#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace bench {

namespace {
// One exact range of kSubCount values, then kSubCount buckets for each of the
// remaining powers of two up to 2^64.
constexpr std::size_t kBuckets = Histogram::kSubCount * (64 - Histogram::kSubBits + 1);
}  // namespace

Histogram::Histogram() : counts_(kBuckets, 0) {}

std::size_t Histogram::bucket_of(std::uint64_t value) {
  if (value < kSubCount) return static_cast<std::size_t>(value);
  const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(value));
  const unsigned shift = msb - kSubBits;  // bucket width is 2^shift
  const std::uint64_t sub = (value >> shift) - kSubCount;
  return static_cast<std::size_t>(kSubCount + shift * kSubCount + sub);
}

std::uint64_t Histogram::bucket_low(std::size_t bucket) {
  if (bucket < kSubCount) return bucket;
  const std::uint64_t shift = (bucket - kSubCount) / kSubCount;
  const std::uint64_t sub = (bucket - kSubCount) % kSubCount;
  return (kSubCount + sub) << shift;
}

std::uint64_t Histogram::bucket_high(std::size_t bucket) {
  if (bucket < kSubCount) return bucket;
  const std::uint64_t shift = (bucket - kSubCount) / kSubCount;
  return bucket_low(bucket) + ((std::uint64_t{1} << shift) - 1);
}

void Histogram::record(std::uint64_t value) {
  ++counts_[bucket_of(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += value;
}

void Histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

double Histogram::mean() const {
  return count_ ? static_cast<double>(sum_ / count_) : 0.0;
}

std::uint64_t Histogram::value_at_percentile(double percentile) const {
  if (count_ == 0) return 0;
  percentile = std::clamp(percentile, 0.0, 100.0);
  // Rank of the value we want, 1-based: p50 of 1..100 is the 50th value.
  auto rank = static_cast<std::uint64_t>(std::ceil(percentile * static_cast<double>(count_) / 100.0));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < counts_.size(); ++b) {
    seen += counts_[b];
    // Report the bucket's highest value, as HdrHistogram does, but never
    // beyond what was actually recorded.
    if (seen >= rank) return std::clamp(bucket_high(b), min_, max_);
  }
  return max_;
}

}  // namespace bench
