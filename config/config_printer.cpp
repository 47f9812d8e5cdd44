#include <portico/config.hpp>
#include <portico/registry.hpp>

#include <fmt/format.h>

namespace portico {

namespace {

std::string quoted(const std::string& s) { return format_option_value(s, OptionType::string); }

std::string quoted_list(const std::vector<std::string>& list) {
  return format_option_value(list, OptionType::string_list);
}

std::string prefix_list(const std::vector<Cidr>& list) {
  std::vector<std::string> texts;
  for (const auto& cidr : list) texts.push_back(cidr.text);
  return quoted_list(texts);
}

std::string duration(Duration d) { return quoted(format_duration(d)); }

}  // namespace

std::string print_config(const Config& config, const Registry& registry) {
  const auto& d = config.daemon;
  std::string out = fmt::format("# effective configuration from {}\n", config.source);
  out += "[daemon]\n";
  out += fmt::format("log_level = \"{}\"\n", to_string(d.log_level));
  out += fmt::format("shutdown_timeout = {}\n", duration(d.shutdown_timeout));
  out += fmt::format("max_connections = {}\n", d.max_connections);
  if (!d.user.empty()) out += fmt::format("user = {}\n", quoted(d.user));
  if (!d.group.empty()) out += fmt::format("group = {}\n", quoted(d.group));
  out += fmt::format("allow_root = {}\n", d.allow_root);
  if (!d.pid_file.empty()) out += fmt::format("pid_file = {}\n", quoted(d.pid_file));
  if (!d.log_file.empty()) out += fmt::format("log_file = {}\n", quoted(d.log_file));
  out += fmt::format("plugins = {}\n", quoted_list(d.plugins));
  out += fmt::format("control_socket = {}\n", quoted(d.control_socket));
  out += fmt::format("access_log = {}\n", quoted(d.access_log));
  if (d.access_log_on()) out += fmt::format("access_log_format = \"{}\"\n", to_string(d.access_log_format));

  for (const auto& l : config.listeners) {
    const bool ip = l.address.is_ip();
    out += "\n[[listener]]\n";
    out += fmt::format("name = {}\n", quoted(l.name));
    out += fmt::format("address = {}\n", quoted(l.address.to_string()));
    out += fmt::format("handler = {}\n", quoted(l.handler));
    out += fmt::format("backlog = {}\n", l.backlog);
    if (ip) {
      out += fmt::format("reuse_port = {}\nkeepalive = {}\nnodelay = {}\n", l.reuse_port, l.keepalive, l.nodelay);
      out += fmt::format("defer_accept = {}\n", l.defer_accept ? duration(*l.defer_accept) : quoted("auto"));
    }
    if (l.address.kind == Address::Kind::ipv6) out += fmt::format("v6only = {}\n", l.v6only);
    if (l.socket_mode) out += fmt::format("socket_mode = \"{:04o}\"\n", *l.socket_mode);
    if (!l.socket_user.empty()) out += fmt::format("socket_user = {}\n", quoted(l.socket_user));
    if (!l.socket_group.empty()) out += fmt::format("socket_group = {}\n", quoted(l.socket_group));
    out += fmt::format("max_connections = {}\non_limit = \"{}\"\n", l.max_connections, to_string(l.on_limit));
    if (ip || l.proxy_protocol) {
      out += fmt::format("max_per_source = {}\n", l.max_per_source);
      out += fmt::format("allow = {}\ndeny = {}\n", prefix_list(l.allow), prefix_list(l.deny));
    }
    out += fmt::format("source_prefix_v4 = {}\nsource_prefix_v6 = {}\n", l.source_prefix_v4, l.source_prefix_v6);
    out += fmt::format("rate = {}\n", l.rate);
    if (l.rate > 0) out += fmt::format("burst = {}\n", l.burst);
    out += fmt::format("idle_timeout = {}\nsession_timeout = {}\n", duration(l.idle_timeout), duration(l.session_timeout));
    out += fmt::format("proxy_protocol = {}\n", l.proxy_protocol);
    if (l.proxy_protocol) out += fmt::format("proxy_protocol_timeout = {}\n", duration(l.proxy_protocol_timeout));
    if (d.access_log_on()) out += fmt::format("access_log = {}\n", l.access_log);
    if (l.tls) {
      const TlsConfig& t = *l.tls;
      out += fmt::format("tls_certificate = {}\ntls_key = {}\n", quoted_list(t.certificates), quoted_list(t.keys));
      if (!t.client_ca.empty()) out += fmt::format("tls_client_ca = {}\n", quoted(t.client_ca));
      out += fmt::format("tls_verify_client = \"{}\"\n", to_string(t.verify_client));
      out += fmt::format("tls_alpn = {}\n", quoted_list(t.alpn));
      out += fmt::format("tls_min_version = \"{}\"\n", to_string(t.min_version));
      out += fmt::format("tls_handshake_timeout = {}\n", duration(t.handshake_timeout));
    }

    const HandlerType* type = registry.find(l.handler);
    for (const auto& entry : l.options.entries()) {
      const OptionSpec* spec = type ? type->find_option(entry.name) : nullptr;
      out += fmt::format("{} = {}\n", entry.name, format_option_value(entry.value, spec ? spec->type : OptionType::string));
    }
  }
  return out;
}

}  // namespace portico
