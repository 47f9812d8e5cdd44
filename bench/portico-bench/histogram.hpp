#pragma once
// A small log-linear latency histogram in the style of HdrHistogram.
//
// Values below 2^kSubBits are counted exactly; above that every power-of-two
// range [2^k, 2^(k+1)) is split into 2^kSubBits equal buckets, so any value
// is known to within 1/2^kSubBits (< 0.8 %) of itself, whatever its size.
// Recording is a few shifts and an increment: cheap enough for every op.

#include <cstdint>
#include <vector>

namespace bench {

class Histogram {
 public:
  static constexpr unsigned kSubBits = 7;
  static constexpr std::uint64_t kSubCount = std::uint64_t{1} << kSubBits;

  Histogram();

  void record(std::uint64_t value);
  void reset();

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ ? min_ : 0; }
  std::uint64_t max() const { return max_; }
  double mean() const;

  // The smallest recorded value v (to bucket precision) such that at least
  // `percentile` percent of all values are <= v. 0 when empty; 100 gives max().
  std::uint64_t value_at_percentile(double percentile) const;

  // Bucket arithmetic, public so the tests can pin it down.
  static std::size_t bucket_of(std::uint64_t value);
  static std::uint64_t bucket_low(std::size_t bucket);
  static std::uint64_t bucket_high(std::size_t bucket);  // inclusive

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace bench
