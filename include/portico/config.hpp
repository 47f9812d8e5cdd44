#pragma once
// The configuration as plain, validated structs. Nothing outside the loader
// sees TOML.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <portico/address.hpp>
#include <portico/diagnostics.hpp>
#include <portico/duration.hpp>
#include <portico/options.hpp>

namespace portico {

class Registry;

enum class LogLevel { trace, debug, info, warn, error, critical, off };
std::string_view to_string(LogLevel level);
std::optional<LogLevel> parse_log_level(std::string_view text);

struct DaemonConfig {
  LogLevel log_level = LogLevel::info;
  Duration shutdown_timeout = std::chrono::seconds(10);
};

struct ListenerConfig {
  std::string name;      // unique; the address when the file names none
  Address address;
  std::string handler;   // a type in the registry
  Options options;       // that type's options, defaults filled in
  SourcePos pos;         // the [[listener]] header
};

struct Config {
  std::string source;    // file name, or "<embedded default>"
  DaemonConfig daemon;
  std::vector<ListenerConfig> listeners;
};

// The configuration porticod runs when no config file exists: the greeting
// on 127.0.0.1:8888.
extern const std::string_view embedded_default_config;
inline constexpr std::string_view embedded_default_name = "<embedded default>";

// The outcome of loading: a config when `errors` is empty.
struct LoadResult {
  std::optional<Config> config;
  Diagnostics errors;
};

// Parses and validates `text`; `source_name` names it in messages.
LoadResult parse_config(std::string_view text, std::string source_name, const Registry& registry);
// Reads and parses the file at `path`. A file that cannot be read is
// reported as one diagnostic at position 0:0.
LoadResult load_config_file(const std::string& path, const Registry& registry);

// The effective configuration as TOML, every default written out.
std::string print_config(const Config& config, const Registry& registry);

}  // namespace portico
