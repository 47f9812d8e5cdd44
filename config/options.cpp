#include <portico/options.hpp>

#include <stdexcept>

#include <fmt/format.h>

namespace portico {

std::string_view to_string(OptionType type) {
  switch (type) {
    case OptionType::string: return "string";
    case OptionType::integer: return "integer";
    case OptionType::boolean: return "boolean";
    case OptionType::duration: return "duration";
    case OptionType::string_list: return "string-list";
    case OptionType::string_table: return "table";
    case OptionType::upstream_list: return "upstream-list";
  }
  return "?";
}

namespace {

// A TOML basic string, escaped so that it reads back as the same bytes.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (const unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04X}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace

std::string format_option_value(const OptionValue& value, OptionType type) {
  (void)type;
  struct Visitor {
    std::string operator()(const std::string& s) const { return quote(s); }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(Duration d) const { return quote(format_duration(d)); }
    std::string operator()(const StringList& list) const {
      std::string out = "[";
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (i) out += ", ";
        out += quote(list[i]);
      }
      return out + "]";
    }
    std::string operator()(const StringTable& table) const {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : table) {
        out += first ? " " : ", ";
        first = false;
        out += quote(k) + " = " + quote(v);
      }
      return out + (table.empty() ? "}" : " }");
    }
    std::string operator()(const UpstreamList& list) const {
      std::string out = "[";
      for (std::size_t i = 0; i < list.size(); ++i) {
        const UpstreamEntry& e = list[i];
        if (i) out += ", ";
        if (!e.table && e.weight == 1 && !e.backup) {
          out += quote(e.address);
          continue;
        }
        out += "{ address = " + quote(e.address);
        if (e.weight != 1) out += fmt::format(", weight = {}", e.weight);
        if (e.backup) out += ", backup = true";
        out += " }";
      }
      return out + "]";
    }
  };
  return std::visit(Visitor{}, value);
}

void Options::set(std::string name, OptionValue value, SourcePos pos, bool explicit_value) {
  for (auto& e : entries_) {
    if (e.name == name) {
      e.value = std::move(value);
      e.pos = pos;
      e.explicit_value = explicit_value;
      return;
    }
  }
  entries_.push_back(Entry{std::move(name), std::move(value), pos, explicit_value});
}

const Options::Entry& Options::find(std::string_view name) const {
  for (const auto& e : entries_) {
    if (e.name == name) return e;
  }
  throw std::logic_error(fmt::format("handler option \"{}\" was not declared", name));
}

namespace {

template <typename T>
const T& get(const OptionValue& value, std::string_view name) {
  if (const T* v = std::get_if<T>(&value)) return *v;
  throw std::logic_error(fmt::format("handler option \"{}\" read as the wrong type", name));
}

}  // namespace

const std::string& Options::string(std::string_view name) const { return get<std::string>(find(name).value, name); }
std::int64_t Options::integer(std::string_view name) const { return get<std::int64_t>(find(name).value, name); }
bool Options::boolean(std::string_view name) const { return get<bool>(find(name).value, name); }
Duration Options::duration(std::string_view name) const { return get<Duration>(find(name).value, name); }
const StringList& Options::string_list(std::string_view name) const { return get<StringList>(find(name).value, name); }
const StringTable& Options::string_table(std::string_view name) const { return get<StringTable>(find(name).value, name); }
const UpstreamList& Options::upstream_list(std::string_view name) const {
  return get<UpstreamList>(find(name).value, name);
}
SourcePos Options::position(std::string_view name) const { return find(name).pos; }
bool Options::is_explicit(std::string_view name) const { return find(name).explicit_value; }

bool operator==(const Options& a, const Options& b) {
  if (a.entries_.size() != b.entries_.size()) return false;
  for (const auto& e : a.entries_) {
    bool found = false;
    for (const auto& f : b.entries_) {
      if (f.name == e.name) {
        found = f.value == e.value;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace portico
