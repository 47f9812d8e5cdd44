#pragma once
// How the proxy picks an upstream for a new client: the balancing policies
// as pure functions of weights, loads and which upstreams may be used now.
// No I/O and no clocks, so each is tested alone.
//
// `usable[i]` says whether upstream i may take this client (up, of the tier
// in use, not yet tried for it); every pick returns an index with
// usable[index] true, or nullopt when none is.

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portico::handlers {

enum class Balance { round_robin, least_conn, source_hash, random_two };

// Smooth weighted round robin: over any run of sum(weights) picks with the
// same upstreams usable, each is picked exactly as often as its weight, and
// the picks of one are spread out (weights 5, 1, 1 give a a b a c a a, not
// a a a a a b c). Equal weights give plain rotation.
class WeightedRoundRobin {
 public:
  explicit WeightedRoundRobin(std::vector<std::int64_t> weights);
  std::optional<std::size_t> pick(const std::vector<bool>& usable);

 private:
  std::vector<std::int64_t> weights_;
  std::vector<std::int64_t> current_;
};

// Fewest open connections per unit of weight (active[i] / weight[i]); ties
// go round robin (`rotation`), so that idle upstreams share new clients.
std::optional<std::size_t> pick_least_loaded(const std::vector<bool>& usable, std::span<const std::int64_t> weights,
                                             std::span<const std::uint64_t> active, WeightedRoundRobin& rotation);

// Power of two choices: two different usable upstreams drawn at random in
// proportion to their weights, and the less loaded of the two (the first on
// a tie). One usable upstream is picked alone.
std::optional<std::size_t> pick_two(const std::vector<bool>& usable, std::span<const std::int64_t> weights,
                                    std::span<const std::uint64_t> active, std::mt19937_64& rng);

// Consistent hashing: each upstream stands at 100 × weight points of a ring
// of 64-bit hashes, placed by a hash of its name; a client goes to the
// owner of the first point at or after the hash of its address, or, when
// that upstream is not usable, to the next usable owner along the ring.
// Adding an upstream to N takes over about 1/(N+1) of the clients, all of
// them from the others; nobody else moves.
class HashRing {
 public:
  static constexpr std::int64_t points_per_weight = 100;

  struct Member {
    std::string name;  // what places the points: the upstream's address
    std::int64_t weight = 1;
  };
  explicit HashRing(const std::vector<Member>& members);
  std::optional<std::size_t> pick(std::uint64_t key_hash, const std::vector<bool>& usable) const;

 private:
  struct Point {
    std::uint64_t hash;
    std::size_t member;
  };
  std::vector<Point> points_;  // sorted by hash
};

// A 64-bit hash of `bytes` (FNV-1a, then a final mix so that inputs that
// differ in one byte land far apart): stable across runs and builds, so a
// client keeps its upstream across restarts too.
std::uint64_t hash_bytes(std::string_view bytes);

}  // namespace portico::handlers
