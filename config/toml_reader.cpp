#include "config/toml_reader.hpp"

#include <algorithm>

#include <fmt/format.h>

#include <portico/text.hpp>

namespace portico::config_detail {

SourcePos position_of(const toml::source_region& region) {
  return SourcePos{region.begin.line, region.begin.column};
}

std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

const toml::node* TableReader::lookup(std::string_view key) {
  known_.emplace_back(key);
  return table_.get(key);
}

SourcePos TableReader::position(std::string_view key) const {
  const toml::node* node = table_.get(key);
  return node ? position_of(node->source()) : position();
}

void TableReader::wrong_type(std::string_view key, const toml::node& node, std::string_view expected) {
  errors_.error(position_of(node.source()),
                fmt::format("\"{}\" in {} must be {}, not {}", key, context_, expected, type_name(node.type())));
}

bool TableReader::free_of_nul(const toml::node& node, std::string_view text) {
  if (text.find('\0') == std::string_view::npos) return true;
  errors_.error(position_of(node.source()),
                fmt::format("{} holds a NUL character (\\u0000), which no name, path or argument may hold",
                            quote_text(text)));
  return false;
}

std::optional<std::string> TableReader::string(std::string_view key, bool bytes) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return std::nullopt;
  if (const auto* s = node->as_string()) {
    if (!bytes && !free_of_nul(*node, s->get())) return std::nullopt;
    return s->get();
  }
  wrong_type(key, *node, "a string");
  return std::nullopt;
}

std::optional<std::int64_t> TableReader::integer(std::string_view key, std::int64_t min, std::int64_t max) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return std::nullopt;
  const auto* i = node->as_integer();
  if (i == nullptr) {
    wrong_type(key, *node, "an integer");
    return std::nullopt;
  }
  if (i->get() < min || i->get() > max) {
    errors_.error(position_of(node->source()),
                  fmt::format("\"{}\" in {} must be from {} to {}, not {}", key, context_, min, max, i->get()));
    return std::nullopt;
  }
  return i->get();
}

std::optional<bool> TableReader::boolean(std::string_view key) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return std::nullopt;
  if (const auto* b = node->as_boolean()) return b->get();
  wrong_type(key, *node, "a boolean (true or false)");
  return std::nullopt;
}

std::optional<Duration> TableReader::duration(std::string_view key) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return std::nullopt;
  const auto* s = node->as_string();
  if (s == nullptr) {
    wrong_type(key, *node, "a duration string such as \"10s\"");
    return std::nullopt;
  }
  std::string error;
  auto d = parse_duration(s->get(), error);
  if (!d) errors_.error(position_of(node->source()), fmt::format("\"{}\" in {}: {}", key, context_, error));
  return d;
}

std::optional<Address> TableReader::address(std::string_view key) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return std::nullopt;
  const auto* s = node->as_string();
  if (s == nullptr) {
    wrong_type(key, *node, "an address string such as \"127.0.0.1:8888\"");
    return std::nullopt;
  }
  std::string error;
  auto a = parse_address(s->get(), error);
  if (!a) errors_.error(position_of(node->source()), fmt::format("\"{}\" in {}: {}", key, context_, error));
  return a;
}

std::optional<std::string> TableReader::choice(std::string_view key, const std::vector<std::string>& choices) {
  auto value = string(key);
  if (!value) return std::nullopt;
  if (std::find(choices.begin(), choices.end(), *value) != choices.end()) return value;
  errors_.error(position(key), fmt::format("\"{}\" in {} must be one of {}, not {}", key, context_,
                                           fmt::join(choices, ", "), quote_text(*value)));
  return std::nullopt;
}

std::optional<StringList> TableReader::strings(std::string_view key, bool bytes) {
  const toml::node* node = lookup(key);
  if (node == nullptr) return std::nullopt;
  const auto* array = node->as_array();
  if (array == nullptr) {
    wrong_type(key, *node, "an array of strings");
    return std::nullopt;
  }
  StringList list;
  bool ok = true;
  for (const auto& element : *array) {
    if (const auto* s = element.as_string()) {
      if (!bytes && !free_of_nul(element, s->get())) ok = false;
      list.push_back(s->get());
    } else {
      errors_.error(position_of(element.source()),
                    fmt::format("\"{}\" in {} must hold only strings, not {}", key, context_, type_name(element.type())));
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return list;
}

std::optional<std::vector<Cidr>> TableReader::prefixes(std::string_view key) {
  const toml::node* node = table_.get(key);
  auto list = strings(key);
  if (!list) return std::nullopt;
  std::vector<Cidr> out;
  bool ok = true;
  for (std::size_t i = 0; i < list->size(); ++i) {
    std::string error;
    if (auto cidr = parse_cidr((*list)[i], error)) {
      out.push_back(std::move(*cidr));
    } else {
      errors_.error(position_of(node->as_array()->get(i)->source()), fmt::format("\"{}\" in {}: {}", key, context_, error));
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<OptionValue> TableReader::option(const OptionSpec& spec) {
  switch (spec.type) {
    case OptionType::string:
      if (!spec.choices.empty()) return choice(spec.name, spec.choices);
      return string(spec.name, spec.bytes);
    case OptionType::integer: return integer(spec.name, spec.min, spec.max);
    case OptionType::boolean: return boolean(spec.name);
    case OptionType::duration: return duration(spec.name);
    case OptionType::string_list: return strings(spec.name, spec.bytes);
    case OptionType::string_table: {
      const toml::node* node = lookup(spec.name);
      if (node == nullptr) return std::nullopt;
      const auto* table = node->as_table();
      if (table == nullptr) {
        wrong_type(spec.name, *node, "a table of strings");
        return std::nullopt;
      }
      StringTable out;
      bool ok = true;
      for (const auto& [k, v] : *table) {
        if (const auto* s = v.as_string()) {
          if (!spec.bytes && (!free_of_nul(v, k.str()) || !free_of_nul(v, s->get()))) ok = false;
          out.emplace(std::string(k.str()), s->get());
        } else {
          errors_.error(position_of(v.source()),
                        fmt::format("{} in {} must be a string, not {}", quote_text(spec.name + "." + std::string(k.str())),
                                    context_, type_name(v.type())));
          ok = false;
        }
      }
      if (!ok) return std::nullopt;
      return out;
    }
  }
  return std::nullopt;
}

void TableReader::require(std::string_view key) {
  if (table_.get(key) == nullptr) {
    errors_.error(position(), fmt::format("{} is missing the required key \"{}\"", context_, key));
  }
}

void TableReader::reject_unknown(const std::vector<std::string>& candidates) {
  for (const auto& [key, value] : table_) {
    const std::string_view name = key.str();
    if (std::find(known_.begin(), known_.end(), name) != known_.end()) continue;
    std::string message = fmt::format("unknown key {} in {}", quote_text(name), context_);
    const std::string hint = closest_match(name, candidates);
    if (!hint.empty()) message += fmt::format(" (did you mean \"{}\"?)", hint);
    errors_.error(position_of(key.source()), std::move(message));
  }
}

}  // namespace portico::config_detail
