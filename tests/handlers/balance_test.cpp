// The proxy's balancing policies alone: smooth weighted round robin, least
// connections, power of two choices with a seeded generator, and the
// consistent hash ring.

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "handlers/balance.hpp"

using namespace portico::handlers;

namespace {

std::vector<bool> all(std::size_t n) { return std::vector<bool>(n, true); }

std::string sequence(WeightedRoundRobin& rr, const std::vector<bool>& usable, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    const auto pick = rr.pick(usable);
    out += pick ? static_cast<char>('a' + *pick) : '-';
  }
  return out;
}

}  // namespace

TEST_CASE("weighted round robin: equal weights rotate", "[balance]") {
  WeightedRoundRobin rr({1, 1, 1});
  CHECK(sequence(rr, all(3), 7) == "abcabca");
}

TEST_CASE("weighted round robin: each weight exactly, spread out", "[balance]") {
  WeightedRoundRobin rr({5, 1, 1});
  CHECK(sequence(rr, all(3), 14) == "aabacaaaabacaa");
  WeightedRoundRobin three({1, 3});
  CHECK(sequence(three, all(2), 8) == "babbbabb");
}

TEST_CASE("weighted round robin skips what is not usable, and picks nothing from nothing", "[balance]") {
  WeightedRoundRobin rr({1, 1, 1});
  CHECK(sequence(rr, {true, false, true}, 4) == "acac");
  CHECK(sequence(rr, {false, false, false}, 2) == "--");
  // Back to all three: everyone still gets a turn in every three.
  const std::string after = sequence(rr, all(3), 3);
  CHECK(std::count(after.begin(), after.end(), 'b') == 1);
}

TEST_CASE("least loaded: the fewest connections per weight, ties in turn", "[balance]") {
  const std::vector<std::int64_t> weights = {1, 1, 1};
  WeightedRoundRobin rotation(weights);
  std::vector<std::uint64_t> active = {3, 1, 2};
  CHECK(pick_least_loaded(all(3), weights, active, rotation) == 1u);
  active = {0, 0, 5};
  // a and b tie: they take turns.
  CHECK(pick_least_loaded(all(3), weights, active, rotation) == 0u);
  CHECK(pick_least_loaded(all(3), weights, active, rotation) == 1u);
  CHECK(pick_least_loaded(all(3), weights, active, rotation) == 0u);
  // Not usable: never, however idle.
  CHECK(pick_least_loaded({false, true, true}, weights, active, rotation) == 1u);
  CHECK(pick_least_loaded({false, false, false}, weights, active, rotation) == std::nullopt);
}

TEST_CASE("least loaded: a weight of 3 carries three times the connections", "[balance]") {
  const std::vector<std::int64_t> weights = {3, 1};
  WeightedRoundRobin rotation(weights);
  // 5/3 < 2/1
  CHECK(pick_least_loaded(all(2), weights, std::vector<std::uint64_t>{5, 2}, rotation) == 0u);
  // 6/3 == 2/1: a tie, by weighted turns
  std::vector<std::uint64_t> active = {6, 2};
  CHECK(pick_least_loaded(all(2), weights, active, rotation) == 0u);
  // 7/3 > 2/1
  CHECK(pick_least_loaded(all(2), weights, std::vector<std::uint64_t>{7, 2}, rotation) == 1u);
}

TEST_CASE("power of two choices: the less loaded of two random ones", "[balance]") {
  const std::vector<std::int64_t> weights = {1, 1, 1, 1};
  std::mt19937_64 rng(42);
  // One busy upstream among four idle ones is never picked: whichever pair
  // is drawn, the other of the two is idle.
  std::vector<std::uint64_t> active = {0, 0, 9, 0};
  std::map<std::size_t, int> counts;
  for (int i = 0; i < 3000; ++i) ++counts[*pick_two(all(4), weights, active, rng)];
  CHECK(counts[2] == 0);
  // The three idle ones share evenly (each 1000 ± 10%).
  for (const std::size_t i : {0u, 1u, 3u}) {
    INFO(i);
    CHECK(counts[i] > 900);
    CHECK(counts[i] < 1100);
  }
  // With a seeded generator the picks repeat.
  std::mt19937_64 again(7);
  std::mt19937_64 same(7);
  for (int i = 0; i < 100; ++i) CHECK(pick_two(all(4), weights, active, again) == pick_two(all(4), weights, active, same));
}

TEST_CASE("power of two choices: one usable alone, none from none, weights as odds", "[balance]") {
  std::mt19937_64 rng(1);
  const std::vector<std::int64_t> weights = {1, 3};
  const std::vector<std::uint64_t> idle = {0, 0};
  CHECK(pick_two({false, true}, weights, idle, rng) == 1u);
  CHECK(pick_two({false, false}, weights, idle, rng) == std::nullopt);
  // Two upstreams, both idle: the pair is always {a, b}, and the first
  // drawn wins the tie: b with odds 3 in 4.
  int b = 0;
  for (int i = 0; i < 4000; ++i) b += *pick_two(all(2), weights, idle, rng) == 1u;
  CHECK(b > 2800);
  CHECK(b < 3200);
}

TEST_CASE("hash ring: a key keeps its upstream, and the spread follows the weights", "[balance]") {
  const HashRing ring({{"10.0.0.1:80", 1}, {"10.0.0.2:80", 1}, {"10.0.0.3:80", 2}});
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 4000; ++i) {
    const auto h = hash_bytes("client " + std::to_string(i));
    const auto pick = ring.pick(h, all(3));
    REQUIRE(pick);
    CHECK(ring.pick(h, all(3)) == pick);
    ++counts[*pick];
  }
  // 1000 / 1000 / 2000, within 15%.
  CHECK(counts[0] > 850);
  CHECK(counts[0] < 1150);
  CHECK(counts[1] > 850);
  CHECK(counts[1] < 1150);
  CHECK(counts[2] > 1700);
  CHECK(counts[2] < 2300);
}

TEST_CASE("hash ring: adding a fifth upstream moves about a fifth of the keys, all to it", "[balance]") {
  std::vector<HashRing::Member> four;
  for (int i = 1; i <= 4; ++i) four.push_back({"10.0.0." + std::to_string(i) + ":80", 1});
  std::vector<HashRing::Member> five = four;
  five.push_back({"10.0.0.5:80", 1});
  const HashRing before(four);
  const HashRing after(five);
  int moved = 0;
  const int keys = 10000;
  for (int i = 0; i < keys; ++i) {
    const auto h = hash_bytes("client " + std::to_string(i));
    const auto a = *before.pick(h, all(4));
    const auto b = *after.pick(h, all(5));
    if (a == b) continue;
    ++moved;
    CHECK(b == 4u);  // only to the new one
  }
  // 1/5 = 2000, within 25%.
  CHECK(moved > 1500);
  CHECK(moved < 2500);
}

TEST_CASE("hash ring: a key whose upstream is down goes to the next one, and comes back", "[balance]") {
  const HashRing ring({{"a:1", 1}, {"b:1", 1}, {"c:1", 1}});
  int moved_elsewhere = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto h = hash_bytes("k" + std::to_string(i));
    const auto home = *ring.pick(h, all(3));
    std::vector<bool> usable = all(3);
    usable[home] = false;
    const auto away = ring.pick(h, usable);
    REQUIRE(away);
    CHECK(*away != home);
    // Keys of the others stay where they are.
    std::vector<bool> other_down = all(3);
    other_down[(home + 1) % 3] = false;
    CHECK(ring.pick(h, other_down) == home);
    ++moved_elsewhere;
  }
  CHECK(moved_elsewhere == 1000);
  CHECK(ring.pick(hash_bytes("x"), {false, false, false}) == std::nullopt);
}

TEST_CASE("hash_bytes is stable: the same clients go to the same upstreams after a restart", "[balance]") {
  CHECK(hash_bytes("") == hash_bytes(""));
  CHECK(hash_bytes("127.0.0.1") != hash_bytes("127.0.0.2"));
  // A fixed value: a change of the function would move every client.
  CHECK(hash_bytes("abc") == 0x0dd490490804b508ULL);
}
