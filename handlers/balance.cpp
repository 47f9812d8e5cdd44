#include "balance.hpp"

#include <algorithm>
#include <string>

namespace portico::handlers {

WeightedRoundRobin::WeightedRoundRobin(std::vector<std::int64_t> weights)
    : weights_(std::move(weights)), current_(weights_.size(), 0) {}

std::optional<std::size_t> WeightedRoundRobin::pick(const std::vector<bool>& usable) {
  std::optional<std::size_t> best;
  std::int64_t total = 0;
  for (std::size_t i = 0; i < weights_.size(); ++i) {
    if (!usable[i]) continue;
    current_[i] += weights_[i];
    total += weights_[i];
    if (!best || current_[i] > current_[*best]) best = i;
  }
  if (best) current_[*best] -= total;
  return best;
}

std::optional<std::size_t> pick_least_loaded(const std::vector<bool>& usable, std::span<const std::int64_t> weights,
                                             std::span<const std::uint64_t> active, WeightedRoundRobin& rotation) {
  // a/wa < b/wb, without division: weights are at most 256 and counts far
  // below 2^55, so the products cannot overflow.
  const auto less = [&](std::size_t a, std::size_t b) {
    return active[a] * static_cast<std::uint64_t>(weights[b]) < active[b] * static_cast<std::uint64_t>(weights[a]);
  };
  std::optional<std::size_t> least;
  for (std::size_t i = 0; i < usable.size(); ++i) {
    if (usable[i] && (!least || less(i, *least))) least = i;
  }
  if (!least) return std::nullopt;
  std::vector<bool> tied(usable.size(), false);
  for (std::size_t i = 0; i < usable.size(); ++i) tied[i] = usable[i] && !less(*least, i);
  return rotation.pick(tied);
}

namespace {

// One of the usable upstreams except `skip`, in proportion to weight.
std::optional<std::size_t> draw(const std::vector<bool>& usable, std::span<const std::int64_t> weights,
                                std::optional<std::size_t> skip, std::mt19937_64& rng) {
  std::int64_t total = 0;
  for (std::size_t i = 0; i < usable.size(); ++i) {
    if (usable[i] && i != skip) total += weights[i];
  }
  if (total == 0) return std::nullopt;
  std::int64_t at = std::uniform_int_distribution<std::int64_t>(0, total - 1)(rng);
  for (std::size_t i = 0; i < usable.size(); ++i) {
    if (!usable[i] || i == skip) continue;
    if (at < weights[i]) return i;
    at -= weights[i];
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::size_t> pick_two(const std::vector<bool>& usable, std::span<const std::int64_t> weights,
                                    std::span<const std::uint64_t> active, std::mt19937_64& rng) {
  const auto first = draw(usable, weights, std::nullopt, rng);
  if (!first) return std::nullopt;
  const auto second = draw(usable, weights, first, rng);
  if (!second) return first;
  const auto a = *first;
  const auto b = *second;
  return active[b] * static_cast<std::uint64_t>(weights[a]) < active[a] * static_cast<std::uint64_t>(weights[b]) ? b
                                                                                                                  : a;
}

std::uint64_t hash_bytes(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  // splitmix64's finaliser.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

HashRing::HashRing(const std::vector<Member>& members) {
  for (std::size_t m = 0; m < members.size(); ++m) {
    const std::int64_t count = members[m].weight * points_per_weight;
    for (std::int64_t i = 0; i < count; ++i) {
      points_.push_back({hash_bytes(members[m].name + "#" + std::to_string(i)), m});
    }
  }
  // Ties between two names' points (about one in 2^40 rings) go the same
  // way every time: by member index.
  std::sort(points_.begin(), points_.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.member < b.member;
  });
}

std::optional<std::size_t> HashRing::pick(std::uint64_t key_hash, const std::vector<bool>& usable) const {
  if (points_.empty()) return std::nullopt;
  auto it = std::lower_bound(points_.begin(), points_.end(), key_hash,
                             [](const Point& p, std::uint64_t h) { return p.hash < h; });
  const std::size_t start = static_cast<std::size_t>(it - points_.begin());
  // Down upstreams' points are skipped; a ring with none usable is walked
  // once through.
  for (std::size_t n = 0; n < points_.size(); ++n) {
    const Point& p = points_[(start + n) % points_.size()];
    if (usable[p.member]) return p.member;
  }
  return std::nullopt;
}

}  // namespace portico::handlers
