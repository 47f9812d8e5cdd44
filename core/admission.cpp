#include "core/admission.hpp"

#include <algorithm>
#include <cstring>

namespace portico {

AccessVerdict check_access(const ListenerConfig& config, const IpBytes& ip) {
  for (const auto& rule : config.deny) {
    if (rule.contains(ip)) return {false, "denied by " + rule.text};
  }
  if (config.allow.empty()) return {};
  for (const auto& rule : config.allow) {
    if (rule.contains(ip)) return {};
  }
  return {false, "not in the allow list"};
}

std::size_t SourceCounter::Hash::operator()(const IpBytes& ip) const noexcept {
  // FNV-1a over the significant bytes.
  std::size_t h = 1469598103934665603ull;
  const std::size_t n = ip.v4 ? 4 : 16;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ ip.bytes[i]) * 1099511628211ull;
  return h ^ ip.v4;
}

std::optional<IpBytes> SourceCounter::acquire(const IpBytes& ip, const ListenerConfig& config) {
  const IpBytes prefix = mask(ip, ip.v4 ? config.source_prefix_v4 : config.source_prefix_v6);
  auto& count = counts_[prefix];
  if (count >= config.max_per_source) {
    if (count == 0) counts_.erase(prefix);
    return std::nullopt;
  }
  ++count;
  return prefix;
}

void SourceCounter::release(const IpBytes& prefix) {
  const auto it = counts_.find(prefix);
  if (it == counts_.end()) return;
  if (--it->second == 0) counts_.erase(it);
}

bool TokenBucket::take(std::size_t rate, std::size_t burst, clock::time_point now) {
  const double capacity = static_cast<double>(burst > 0 ? burst : rate);
  if (tokens_ < 0) {
    tokens_ = capacity;
  } else {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(capacity, tokens_ + elapsed * static_cast<double>(rate));
  }
  last_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

}  // namespace portico
