#include <portico/config.hpp>
#include <portico/registry.hpp>
#include <portico/text.hpp>

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace portico {

namespace {

using Settings = std::vector<std::pair<std::string, std::string>>;

// print_config()'s output cut into its sections, [daemon] first then one per
// listener, each as "key = value" pairs in the order printed. Comparing
// the printed form means every key print_config knows is compared, with
// defaults filled in and values spelled one way ("1m" and "60s" alike).
std::vector<Settings> sections_of(const std::string& printed) {
  std::vector<Settings> sections;
  std::size_t start = 0;
  while (start < printed.size()) {
    std::size_t end = printed.find('\n', start);
    if (end == std::string::npos) end = printed.size();
    const std::string_view line(printed.data() + start, end - start);
    start = end + 1;
    if (line.empty() || line.starts_with('#')) continue;
    if (line == "[daemon]" || line == "[[listener]]") {
      sections.emplace_back();
      continue;
    }
    const std::size_t equals = line.find(" = ");
    if (equals == std::string_view::npos || sections.empty()) continue;
    sections.back().emplace_back(std::string(line.substr(0, equals)), std::string(line.substr(equals + 3)));
  }
  return sections;
}

// Keys whose new value a running porticod does not take: the daemon's
// identity and files, and what a kept listening socket was bound with.
const std::set<std::string, std::less<>> daemon_restart_keys = {"user", "group", "pid_file", "log_file",
                                                                  "control_socket"};
const std::set<std::string, std::less<>> listener_restart_keys = {"reuse_port", "v6only", "socket_mode",
                                                                    "socket_user", "socket_group"};

void compare(const Settings& before, const Settings& after, const std::string& scope,
             const std::set<std::string, std::less<>>& restart_keys, std::vector<ConfigDiff::Change>& changes) {
  const auto value_in = [](const Settings& settings, const std::string& key) -> const std::string* {
    for (const auto& [k, v] : settings) {
      if (k == key) return &v;
    }
    return nullptr;
  };
  // The keys of both sides, in the order printed (after's first).
  std::vector<std::string> keys;
  for (const auto* side : {&after, &before}) {
    for (const auto& [key, value] : *side) {
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    }
  }
  for (const auto& key : keys) {
    const std::string* was = value_in(before, key);
    const std::string* now = value_in(after, key);
    if (was && now && *was == *now) continue;
    changes.push_back({scope, key, was ? *was : std::string(), now ? *now : std::string(),
                       restart_keys.contains(key)});
  }
}

ConfigDiff::Listener describe(const ListenerConfig& listener) {
  return {listener.name, listener.address.to_string(), listener.handler};
}

}  // namespace

// Matching by address alone, a reload that removed or added one of several
// listeners on port 0 of one host handed their sockets (and ports) to each
// other's handlers.
bool same_listener(const ListenerConfig& running, const ListenerConfig& next) {
  if (running.address != next.address) return false;
  return !running.address.is_ip() || running.address.port != 0 || running.name == next.name;
}

ConfigDiff diff_configs(const Config& before, const Config& after, const Registry& registry) {
  ConfigDiff diff;
  const auto was = sections_of(print_config(before, registry));
  const auto now = sections_of(print_config(after, registry));
  // One section per listener, after [daemon]: print_config writes them all.
  if (was.size() != before.listeners.size() + 1 || now.size() != after.listeners.size() + 1) {
    throw std::logic_error("print_config() wrote an unexpected number of sections");
  }
  compare(was[0], now[0], "[daemon]", daemon_restart_keys, diff.changes);
  std::vector<bool> matched(before.listeners.size(), false);
  for (std::size_t i = 0; i < after.listeners.size(); ++i) {
    const ListenerConfig& listener = after.listeners[i];
    std::optional<std::size_t> previous;
    for (std::size_t j = 0; j < before.listeners.size(); ++j) {
      if (!matched[j] && same_listener(before.listeners[j], listener)) {
        previous = j;
        break;
      }
    }
    if (!previous) {
      diff.added.push_back(describe(listener));
      continue;
    }
    matched[*previous] = true;
    diff.kept.push_back(describe(listener));
    compare(was[*previous + 1], now[i + 1], fmt::format("listener {}", quote_text(listener.name)),
            listener_restart_keys, diff.changes);
  }
  for (std::size_t j = 0; j < before.listeners.size(); ++j) {
    if (!matched[j]) diff.removed.push_back(describe(before.listeners[j]));
  }
  return diff;
}

std::vector<std::string> ConfigDiff::lines() const {
  std::vector<std::string> out;
  const auto listener_line = [](char sign, const Listener& l) {
    return fmt::format("{} listener {} {} ({})", sign, quote_text(l.name), escape_text(l.address),
                       escape_text(l.handler));
  };
  for (const auto& l : added) out.push_back(listener_line('+', l));
  for (const auto& l : removed) out.push_back(listener_line('-', l));
  for (const auto& c : changes) {
    out.push_back(escape_controls(fmt::format("~ {} {}: {} -> {}{}", c.scope, c.key,
                                              c.before.empty() ? "(unset)" : c.before,
                                              c.after.empty() ? "(unset)" : c.after,
                                              c.restart ? " (takes effect at restart)" : "")));
  }
  return out;
}

}  // namespace portico
