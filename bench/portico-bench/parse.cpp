#include "parse.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace bench {

namespace {

// Splits "12.5ms" into its number and its unit. Returns false when there is no
// leading number.
bool split_number(std::string_view text, double& number, std::string_view& unit) {
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0) return false;
  const auto digits = text.substr(0, i);
  // std::from_chars for double is in libstdc++ 12; it refuses "1." and ".5"
  // cases we don't care to support anyway.
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return false;
  unit = text.substr(i);
  return true;
}

std::optional<std::uint32_t> parse_ipv4(std::string_view text) {
  in_addr a{};
  const std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

}  // namespace

std::optional<Nanos> parse_duration(std::string_view text, std::string& error) {
  double number = 0;
  std::string_view unit;
  if (!split_number(text, number, unit)) {
    error = "a duration is a number with a unit, e.g. 250ms, 5s or 2m";
    return std::nullopt;
  }
  double scale = 0;
  if (unit == "ms") scale = 1e6;
  else if (unit == "s") scale = 1e9;
  else if (unit == "m") scale = 60e9;
  else if (unit == "h") scale = 3600e9;
  else if (unit.empty() && number == 0) scale = 0;
  else {
    error = "unknown duration unit '" + std::string(unit) + "' (use ms, s, m or h)";
    return std::nullopt;
  }
  const double ns = number * scale;
  if (!std::isfinite(ns) || ns > 1e9 * 86400 * 365) {
    error = "duration too long";
    return std::nullopt;
  }
  return Nanos(static_cast<std::int64_t>(std::llround(ns)));
}

std::optional<std::uint64_t> parse_size(std::string_view text, std::string& error) {
  std::uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end == text.data()) {
    error = "a size is a whole number of bytes, optionally with k or m, e.g. 1024 or 64k";
    return std::nullopt;
  }
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "b" || unit == "B") scale = 1;
  else if (unit == "k" || unit == "K" || unit == "KiB") scale = 1024;
  else if (unit == "m" || unit == "M" || unit == "MiB") scale = 1024 * 1024;
  else {
    error = "unknown size unit '" + std::string(unit) + "' (use k or m)";
    return std::nullopt;
  }
  if (number > UINT64_MAX / scale) {
    error = "size too large";
    return std::nullopt;
  }
  return number * scale;
}

std::optional<std::string> unescape(std::string_view text, std::string& error) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    if (++i == text.size()) {
      error = "trailing backslash";
      return std::nullopt;
    }
    switch (text[i]) {
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case '0': out += '\0'; break;
      case '\\': out += '\\'; break;
      case '"': out += '"'; break;
      case '\'': out += '\''; break;
      case 'x': {
        unsigned value = 0;
        const auto hex = text.substr(i + 1, 2);  // i < size, so i + 1 is in range
        auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), value, 16);
        if (hex.size() != 2 || ec != std::errc{} || end != hex.data() + 2) {
          error = "\\x needs two hex digits";
          return std::nullopt;
        }
        out += static_cast<char>(value);
        i += 2;
        break;
      }
      default:
        error = std::string("unknown escape \\") + text[i];
        return std::nullopt;
    }
  }
  return out;
}

std::string escape(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      default:
        if (u < 0x20 || u >= 0x7f) {
          out += "\\x";
          out += kHex[u >> 4];
          out += kHex[u & 15];
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::optional<SourceRange> parse_source_range(std::string_view text, std::string& error) {
  SourceRange range;
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) {
    if (auto v4 = parse_ipv4(text)) {
      range.first = range.last = *v4;
      return range;
    }
    const std::string s(text);
    if (inet_pton(AF_INET6, s.c_str(), &range.v6) == 1) {
      range.family = AF_INET6;
      return range;
    }
    error = "'" + s + "' is not an IP address";
    return std::nullopt;
  }
  const auto first = parse_ipv4(text.substr(0, dash));
  const auto last = parse_ipv4(text.substr(dash + 1));
  if (!first || !last) {
    error = "a source range is FIRST-LAST with two IPv4 addresses, e.g. 127.0.0.1-127.0.0.254";
    return std::nullopt;
  }
  if (*first > *last) {
    error = "source range runs backwards";
    return std::nullopt;
  }
  range.first = *first;
  range.last = *last;
  return range;
}

std::optional<std::vector<int>> parse_pid_list(std::string_view text, std::string& error) {
  std::vector<int> pids;
  for (;;) {
    const auto comma = text.find(',');
    const auto item = text.substr(0, comma);
    int pid = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), pid);
    if (item.empty() || ec != std::errc{} || end != item.data() + item.size() || pid < 1) {
      error = "'" + std::string(item) + "' is not a process id (a list is 1234,1240)";
      return std::nullopt;
    }
    if (std::find(pids.begin(), pids.end(), pid) != pids.end()) {
      // Counted twice, its CPU time would be too.
      error = "process id " + std::to_string(pid) + " is given twice";
      return std::nullopt;
    }
    pids.push_back(pid);
    if (comma == std::string_view::npos) return pids;
    text.remove_prefix(comma + 1);
  }
}

}  // namespace bench
