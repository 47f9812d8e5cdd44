#include <portico/registry.hpp>
#include <portico/version.hpp>

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace portico {

const char* version() { return PORTICO_VERSION_STRING; }

const OptionSpec* HandlerType::find_option(std::string_view option) const {
  for (const auto& spec : options) {
    if (spec.name == option) return &spec;
  }
  return nullptr;
}

void Registry::add(HandlerType type) {
  if (type.name.empty()) throw std::invalid_argument("handler type without a name");
  if (!type.create) throw std::invalid_argument(fmt::format("handler type \"{}\" has no factory", type.name));
  if (types_.contains(type.name)) throw std::invalid_argument(fmt::format("handler type \"{}\" is registered twice", type.name));
  std::set<std::string_view> seen;
  for (const auto& spec : type.options) {
    if (!seen.insert(spec.name).second) {
      throw std::invalid_argument(fmt::format("handler type \"{}\" declares option \"{}\" twice", type.name, spec.name));
    }
  }
  auto name = type.name;
  types_.emplace(std::move(name), std::move(type));
}

const HandlerType* Registry::find(std::string_view name) const {
  const auto it = types_.find(name);
  return it == types_.end() ? nullptr : &it->second;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, type] : types_) out.push_back(name);
  return out;
}

std::string Registry::describe() const {
  std::string out;
  for (const auto& [name, type] : types_) {
    out += fmt::format("{}: {}\n", name, type.doc);
    std::size_t name_width = 0;
    std::size_t default_width = 0;
    std::vector<std::string> defaults;
    for (const auto& spec : type.options) {
      defaults.push_back(spec.default_value ? format_option_value(*spec.default_value, spec.type) : "(required)");
      name_width = std::max(name_width, spec.name.size());
      default_width = std::max(default_width, defaults.back().size());
    }
    for (std::size_t i = 0; i < type.options.size(); ++i) {
      const auto& spec = type.options[i];
      std::string doc = spec.doc;
      if (!spec.choices.empty()) {
        doc += fmt::format(" (one of: {})", fmt::join(spec.choices, ", "));
      }
      out += fmt::format("    {:<{}}  {:<13}  {:<{}}  {}\n", spec.name, name_width, to_string(spec.type), defaults[i],
                         default_width, doc);
    }
  }
  return out;
}

}  // namespace portico
