#pragma once
// Handler options: the schema a handler type declares, and the validated
// values one listener gives them.

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <portico/diagnostics.hpp>
#include <portico/duration.hpp>

namespace portico {

enum class OptionType { string, integer, boolean, duration, string_list, string_table };

// The word used for a type in messages and in --list-handlers.
std::string_view to_string(OptionType type);

using StringList = std::vector<std::string>;
using StringTable = std::map<std::string, std::string>;
using OptionValue = std::variant<std::string, std::int64_t, bool, Duration, StringList, StringTable>;

// One option of a handler type. `default_value` empty means the option is
// required. `choices` restricts a string option to a set of words; `min` and
// `max` bound an integer option.
struct OptionSpec {
  std::string name;
  OptionType type = OptionType::string;
  std::optional<OptionValue> default_value;
  std::string doc;
  std::vector<std::string> choices = {};
  std::int64_t min = std::numeric_limits<std::int64_t>::min();
  std::int64_t max = std::numeric_limits<std::int64_t>::max();
  // The option only works while porticod keeps root (e.g. switching users):
  // setting it together with [daemon] user, which drops root after binding,
  // is a config error.
  bool needs_root = false;
  // A string option whose value is data sent as is (a greeting's message),
  // which may hold any byte. Otherwise a string is a name, path or argument,
  // and one holding a NUL is a config error (system calls would stop at it).
  bool bytes = false;
};

// The default as it would be written in a config file ("10s", 100, "text").
std::string format_option_value(const OptionValue& value, OptionType type);

// Values of one listener's handler options, defaults filled in. Getters take
// an option name that the handler type declared; asking for an undeclared
// name or the wrong type is a programming error (throws std::logic_error).
class Options {
 public:
  void set(std::string name, OptionValue value, SourcePos pos, bool explicit_value);

  const std::string& string(std::string_view name) const;
  std::int64_t integer(std::string_view name) const;
  bool boolean(std::string_view name) const;
  Duration duration(std::string_view name) const;
  const StringList& string_list(std::string_view name) const;
  const StringTable& string_table(std::string_view name) const;

  // Where the value was written (the listener's position for a default).
  SourcePos position(std::string_view name) const;
  // True when the config file gave the value, false for a default.
  bool is_explicit(std::string_view name) const;

  struct Entry {
    std::string name;
    OptionValue value;
    SourcePos pos;
    bool explicit_value = false;
  };
  const std::vector<Entry>& entries() const { return entries_; }

  friend bool operator==(const Options& a, const Options& b);

 private:
  const Entry& find(std::string_view name) const;
  std::vector<Entry> entries_;
};

}  // namespace portico
