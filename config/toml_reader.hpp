#pragma once
// Reads typed values out of one TOML table, reporting every mistake with its
// position, and remembering which keys were read so that the rest can be
// reported as unknown. Private to the config loader.

#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include <portico/address.hpp>
#include <portico/cidr.hpp>
#include <portico/diagnostics.hpp>
#include <portico/duration.hpp>
#include <portico/options.hpp>

namespace portico::config_detail {

SourcePos position_of(const toml::source_region& region);
std::string_view type_name(toml::node_type type);

class TableReader {
 public:
  TableReader(const toml::table& table, std::string context, Diagnostics& errors)
      : table_(table), context_(std::move(context)), errors_(errors) {}

  // Each returns nullopt when the key is absent or its value is wrong (the
  // latter reported).
  // Strings are names, paths or text handed to system calls, which stop at
  // a NUL ("nobody\u0000x" would be taken as "nobody"): one holding a NUL
  // is a mistake, unless `bytes` says the value is data sent as is (a
  // greeting's message).
  std::optional<std::string> string(std::string_view key, bool bytes = false);
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max);
  std::optional<bool> boolean(std::string_view key);
  std::optional<Duration> duration(std::string_view key);
  std::optional<Address> address(std::string_view key);
  std::optional<std::string> choice(std::string_view key, const std::vector<std::string>& choices);
  std::optional<StringList> strings(std::string_view key, bool bytes = false);
  std::optional<std::vector<Cidr>> prefixes(std::string_view key);
  // A value of any OptionType, for handler options.
  std::optional<OptionValue> option(const OptionSpec& spec);

  // Marks a key as known without reading it.
  void accept(std::string_view key) { known_.emplace_back(key); }
  // Reports a required key that is absent.
  void require(std::string_view key);
  // Reports every key that no reader asked for; `candidates` feed the "did
  // you mean" hint.
  void reject_unknown(const std::vector<std::string>& candidates);

  SourcePos position() const { return position_of(table_.source()); }
  SourcePos position(std::string_view key) const;
  const std::string& context() const { return context_; }
  const toml::table& table() const { return table_; }
  Diagnostics& errors() { return errors_; }

 private:
  const toml::node* lookup(std::string_view key);
  void wrong_type(std::string_view key, const toml::node& node, std::string_view expected);
  // False (and reported) when `text` holds a NUL.
  bool free_of_nul(const toml::node& node, std::string_view text);

  const toml::table& table_;
  std::string context_;
  Diagnostics& errors_;
  std::vector<std::string> known_;
};

}  // namespace portico::config_detail
