#pragma once
// Which new connections a listener admits: allow/deny rules, a cap per
// client address, and a token bucket on the connection rate. Internal to the
// server; single-threaded.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <portico/cidr.hpp>
#include <portico/config.hpp>

namespace portico {

// The rule that refuses `ip`, or nullptr when it is allowed: deny wins; a
// non-empty allow list refuses whatever it does not contain.
struct AccessVerdict {
  bool allowed = true;
  std::string reason;  // e.g. "denied by 10.0.0.0/8", "not in the allow list"
};
AccessVerdict check_access(const ListenerConfig& config, const IpBytes& ip);

// Counts open connections per client prefix (/32 and /64 by default).
class SourceCounter {
 public:
  // Takes a slot for `ip`'s prefix and returns the prefix, to be given back
  // to release(); nullopt (and nothing taken) when max_per_source slots are
  // already in use.
  std::optional<IpBytes> acquire(const IpBytes& ip, const ListenerConfig& config);
  void release(const IpBytes& prefix);
  std::size_t sources() const { return counts_.size(); }

 private:
  struct Hash {
    std::size_t operator()(const IpBytes& ip) const noexcept;
  };
  struct Equal {
    bool operator()(const IpBytes& a, const IpBytes& b) const noexcept { return a.v4 == b.v4 && a.bytes == b.bytes; }
  };
  std::unordered_map<IpBytes, std::size_t, Hash, Equal> counts_;
};

// `rate` tokens per second, holding at most `burst`.
class TokenBucket {
 public:
  using clock = std::chrono::steady_clock;
  bool take(std::size_t rate, std::size_t burst, clock::time_point now = clock::now());

 private:
  double tokens_ = -1;  // negative until first use: start full
  clock::time_point last_{};
};

}  // namespace portico
