#pragma once
// Parsers for the command-line value syntaxes, kept free of I/O so they can
// be unit-tested: durations ("250ms"), sizes ("64k"), C escapes in payloads
// ("Hello\n") and source address ranges ("127.0.0.1-127.0.0.254").

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <netinet/in.h>

namespace bench {

using Nanos = std::chrono::nanoseconds;

// "<number><unit>", unit one of ms, s, m, h; the number may have a fraction
// ("1.5s"). A bare "0" is allowed (no warm-up). Negative values are refused.
std::optional<Nanos> parse_duration(std::string_view text, std::string& error);

// "4096", "64k", "1m", "1KiB", "2MiB" (k and m are binary: 1k = 1024 bytes).
std::optional<std::uint64_t> parse_size(std::string_view text, std::string& error);

// Decodes \n \r \t \0 \\ \" \' and \xHH; any other backslash sequence is an error.
std::optional<std::string> unescape(std::string_view text, std::string& error);

// The reverse, for printing payloads readably.
std::string escape(std::string_view bytes);

// A contiguous IPv4 range "a.b.c.d-a.b.c.e", or a single IPv4 or IPv6 address.
struct SourceRange {
  int family = AF_INET;
  std::uint32_t first = 0;  // IPv4, host byte order
  std::uint32_t last = 0;
  in6_addr v6{};            // used when family == AF_INET6

  std::uint64_t size() const { return family == AF_INET ? std::uint64_t{last} - first + 1 : 1; }
};

std::optional<SourceRange> parse_source_range(std::string_view text, std::string& error);

// Process ids separated by commas, "1234" or "1234,1240": a server that runs
// as several processes (a TLS front-end and the server behind it, a master
// and its workers). Each is a positive number; duplicates are refused.
std::optional<std::vector<int>> parse_pid_list(std::string_view text, std::string& error);

}  // namespace bench
