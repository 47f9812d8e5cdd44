#include <portico/config.hpp>
#include <portico/registry.hpp>

#include <fmt/format.h>

namespace portico {

std::string print_config(const Config& config, const Registry& registry) {
  const auto quoted = [](const std::string& s) { return format_option_value(s, OptionType::string); };
  std::string out = fmt::format("# effective configuration from {}\n", config.source);
  out += "[daemon]\n";
  out += fmt::format("log_level = \"{}\"\n", to_string(config.daemon.log_level));
  out += fmt::format("shutdown_timeout = \"{}\"\n", format_duration(config.daemon.shutdown_timeout));
  for (const auto& listener : config.listeners) {
    out += "\n[[listener]]\n";
    out += fmt::format("name = {}\n", quoted(listener.name));
    out += fmt::format("address = {}\n", quoted(listener.address.to_string()));
    out += fmt::format("handler = {}\n", quoted(listener.handler));
    const HandlerType* type = registry.find(listener.handler);
    for (const auto& entry : listener.options.entries()) {
      const OptionSpec* spec = type ? type->find_option(entry.name) : nullptr;
      out += fmt::format("{} = {}\n", entry.name,
                         format_option_value(entry.value, spec ? spec->type : OptionType::string));
    }
  }
  return out;
}

}  // namespace portico
