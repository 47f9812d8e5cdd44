#include <portico/config.hpp>
#include <portico/registry.hpp>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include <portico/text.hpp>

#include "config/toml_reader.hpp"
#include "core/tls.hpp"

namespace portico {

using config_detail::position_of;
using config_detail::TableReader;

const std::string_view embedded_default_config = R"(# portico's embedded default: the greeting on 127.0.0.1:8888.
[daemon]
log_level = "info"
shutdown_timeout = "10s"
# Started as root, porticod binds first, then serves as nobody.
user = "nobody"

[[listener]]
name = "greeting"
address = "127.0.0.1:8888"
handler = "greeting"
)";

namespace {

constexpr std::string_view level_names[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};

const std::vector<std::string> daemon_keys = {"log_level", "shutdown_timeout", "max_connections", "user", "group",
                                              "allow_root", "pid_file", "log_file", "plugins",
                                              "control_socket", "access_log", "access_log_format"};
const std::vector<std::string> listener_keys = {
    "name",           "address",          "handler",     "backlog",         "reuse_port",     "keepalive",
    "nodelay",        "v6only",           "defer_accept", "socket_mode",    "max_connections", "on_limit",
    "max_per_source", "source_prefix_v4", "source_prefix_v6", "rate",       "burst",          "idle_timeout",
    "session_timeout", "allow",           "deny",        "proxy_protocol",  "proxy_protocol_timeout",
    "socket_user",    "socket_group",     "tls_certificate", "tls_key",     "tls_client_ca",  "tls_verify_client",
    "tls_alpn",       "tls_min_version",  "tls_handshake_timeout", "access_log"};

constexpr std::int64_t max_count = 10'000'000;

// getpwnam_r and getgrnam_r, since a reload reads the file on a thread of
// its own while handlers may look up users on the event loop. An entry
// larger than 64 KiB is treated as absent.
struct UserIds {
  uid_t uid;
  gid_t gid;  // the primary group
};

std::optional<UserIds> find_user(const std::string& name) {
  std::vector<char> buffer(1024);
  passwd entry{};
  passwd* found = nullptr;
  int rc = 0;
  while ((rc = getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found)) == ERANGE &&
         buffer.size() < 65536) {
    buffer.resize(buffer.size() * 2);
  }
  if (rc != 0 || found == nullptr) return std::nullopt;
  return UserIds{entry.pw_uid, entry.pw_gid};
}

std::optional<gid_t> find_group(const std::string& name) {
  std::vector<char> buffer(1024);
  group entry{};
  group* found = nullptr;
  int rc = 0;
  while ((rc = getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found)) == ERANGE &&
         buffer.size() < 65536) {
    buffer.resize(buffer.size() * 2);
  }
  if (rc != 0 || found == nullptr) return std::nullopt;
  return entry.gr_gid;
}

// The longest path a Unix socket address holds (sun_path, with its NUL).
constexpr std::size_t max_socket_path = 107;

// [daemon] control_socket: empty (none), or an absolute path that fits in
// a Unix socket address.
std::optional<std::string> read_control_socket_key(TableReader& reader) {
  auto path = reader.string("control_socket");
  if (!path || path->empty()) return path;
  if (!path->starts_with('/')) {
    reader.errors().error(reader.position("control_socket"),
                          fmt::format("\"control_socket\" in [daemon] must be an absolute path, not {}",
                                      quote_text(*path)));
    return std::nullopt;
  }
  if (path->size() > max_socket_path) {
    reader.errors().error(reader.position("control_socket"),
                          fmt::format("\"control_socket\" in [daemon] is {} bytes long; a Unix socket path has at "
                                      "most {}",
                                      path->size(), max_socket_path));
    return std::nullopt;
  }
  return path;
}

std::vector<std::string> level_choices() { return {std::begin(level_names), std::end(level_names)}; }

void read_daemon(const toml::node& node, DaemonConfig& daemon, Diagnostics& errors) {
  const auto* table = node.as_table();
  if (table == nullptr) {
    errors.error(position_of(node.source()),
                 fmt::format("\"daemon\" must be a table ([daemon]), not {}", config_detail::type_name(node.type())));
    return;
  }
  TableReader reader(*table, "[daemon]", errors);
  daemon.pos = reader.position();
  for (const auto& [key, value] : *table) daemon.positions[std::string(key.str())] = position_of(value.source());
  if (auto level = reader.choice("log_level", level_choices())) daemon.log_level = *parse_log_level(*level);
  if (auto timeout = reader.duration("shutdown_timeout")) daemon.shutdown_timeout = *timeout;
  if (auto max = reader.integer("max_connections", 0, max_count)) daemon.max_connections = static_cast<std::size_t>(*max);
  if (auto user = reader.string("user")) daemon.user = *user;
  if (auto group = reader.string("group")) daemon.group = *group;
  if (auto allow_root = reader.boolean("allow_root")) daemon.allow_root = *allow_root;
  if (auto pid_file = reader.string("pid_file")) daemon.pid_file = *pid_file;
  if (auto log_file = reader.string("log_file")) daemon.log_file = *log_file;
  if (auto plugins = reader.strings("plugins")) daemon.plugins = *plugins;
  if (auto control = read_control_socket_key(reader)) daemon.control_socket = *control;
  // Written but not "off" (a path, or a mistake reported here): the
  // keys that depend on it are not judged against "off".
  const toml::node* access_log_node = table->get("access_log");
  const bool access_log_written_on = access_log_node && access_log_node->value_or(std::string_view()) != "off";
  if (auto access_log = reader.string("access_log")) {
    const bool named = *access_log == "off" || *access_log == "stderr" || *access_log == "journal";
    if (!named && !access_log->starts_with('/')) {
      errors.error(reader.position("access_log"),
                   fmt::format("\"access_log\" in [daemon] must be \"off\", \"stderr\", \"journal\" or an absolute "
                               "path, not {}",
                               quote_text(*access_log)));
    } else {
      daemon.access_log = *access_log;
    }
  }
  if (auto format = reader.choice("access_log_format", {"logfmt", "json"})) {
    daemon.access_log_format = *format == "json" ? AccessLogFormat::json : AccessLogFormat::logfmt;
    if (!access_log_written_on) {
      errors.error(reader.position("access_log_format"),
                   fmt::format("\"access_log_format\" in [daemon] applies only when access_log is on, and it is "
                               "\"off\"{}",
                               access_log_node ? "" : " by default"));
    }
  }
  for (const char* key : {"pid_file", "log_file"}) {
    const auto* node = table->get(key);
    if (node && node->is_string() && !node->as_string()->get().starts_with('/')) {
      errors.error(reader.position(key), fmt::format("\"{}\" in [daemon] must be an absolute path", key));
    }
  }
  // Names are resolved now so that --check catches a typo, not the start.
  if (!daemon.user.empty()) {
    const auto ids = find_user(daemon.user);
    if (!ids) {
      errors.error(reader.position("user"), fmt::format("[daemon] user {} does not exist", quote_text(daemon.user)));
    } else if (ids->uid == 0) {
      // Switching to uid 0 drops nothing, and the check that root cannot be
      // regained would stop the start.
      errors.error(reader.position("user"),
                   fmt::format("[daemon] user {} is root (uid 0): name an unprivileged user, or remove "
                               "\"user\" and set allow_root = true to serve as root",
                               quote_text(daemon.user)));
    }
  }
  if (!daemon.group.empty() && !find_group(daemon.group)) {
    errors.error(reader.position("group"), fmt::format("[daemon] group {} does not exist", quote_text(daemon.group)));
  }
  if (!daemon.group.empty() && daemon.user.empty()) {
    errors.error(reader.position("group"), "\"group\" in [daemon] needs \"user\" as well");
  }
  reader.reject_unknown(daemon_keys);
}

// Reports a key that makes no sense for this kind of address.
void only_for(TableReader& reader, const toml::table& table, std::string_view key, bool applies,
              std::string_view what) {
  if (!applies && table.get(key) != nullptr) {
    reader.errors().error(reader.position(key), fmt::format("\"{}\" in {} applies only to {}", key,
                                                            reader.context(), what));
  }
}

// "auto", or a duration in whole seconds: the kernel counts seconds (and
// rounds up further, to its SYN-ACK retransmission times).
void read_defer_accept(TableReader& reader, ListenerConfig& l) {
  const toml::node* node = reader.table().get("defer_accept");
  if (node == nullptr || !node->is_string()) {
    if (auto v = reader.duration("defer_accept")) l.defer_accept = *v;  // reports the wrong type
    return;
  }
  reader.accept("defer_accept");
  const std::string& text = node->as_string()->get();
  if (text == "auto") return;
  const auto v = parse_duration(text);
  if (!v || v->count() % 1000 != 0 || *v > std::chrono::hours(1)) {
    reader.errors().error(reader.position("defer_accept"),
                          fmt::format("\"defer_accept\" in {} must be \"auto\" or whole seconds from \"0s\" to "
                                      "\"1h\", not {}",
                                      reader.context(), quote_text(text)));
    return;
  }
  l.defer_accept = *v;
}

// tls_certificate and tls_key: one path, or a list of them.
std::optional<StringList> path_or_paths(TableReader& reader, std::string_view key) {
  const toml::node* node = reader.table().get(key);
  if (node == nullptr) return std::nullopt;
  if (const auto* text = node->as_string()) {
    reader.accept(key);
    return StringList{text->get()};
  }
  return reader.strings(key);
}

// Where the `index`th entry of `key` was written: the element of a list, or
// the key.
SourcePos entry_position(TableReader& reader, std::string_view key, std::size_t index) {
  const toml::node* node = reader.table().get(key);
  if (const auto* array = node ? node->as_array() : nullptr; array && index < array->size()) {
    return position_of(array->get(index)->source());
  }
  return reader.position(key);
}

void read_tls(TableReader& reader, ListenerConfig& l) {
  const auto& table = reader.table();
  Diagnostics& errors = reader.errors();
  const std::size_t errors_before = errors.size();
  const std::vector<std::string> tls_keys = {"tls_key",  "tls_client_ca",   "tls_verify_client",
                                             "tls_alpn", "tls_min_version", "tls_handshake_timeout"};
  if (table.get("tls_certificate") == nullptr) {
    for (const auto& key : tls_keys) {
      only_for(reader, table, key, false, "listeners with tls_certificate");
      reader.accept(key);
    }
    return;
  }
  TlsConfig tls;
  auto certificates = path_or_paths(reader, "tls_certificate");
  auto keys = path_or_paths(reader, "tls_key");
  if (certificates) tls.certificates = std::move(*certificates);
  if (keys) tls.keys = std::move(*keys);
  if (auto v = reader.string("tls_client_ca")) tls.client_ca = *v;
  if (auto v = reader.choice("tls_verify_client", {"off", "optional", "require"})) {
    tls.verify_client = *v == "off" ? TlsVerifyClient::off : *v == "optional" ? TlsVerifyClient::optional
                                                                               : TlsVerifyClient::require;
  }
  if (auto v = reader.strings("tls_alpn")) tls.alpn = std::move(*v);
  if (auto v = reader.choice("tls_min_version", {"1.2", "1.3"})) {
    tls.min_version = *v == "1.3" ? TlsVersion::tls1_3 : TlsVersion::tls1_2;
  }
  if (auto v = reader.duration("tls_handshake_timeout")) {
    if (v->count() == 0) {
      errors.error(reader.position("tls_handshake_timeout"),
                   fmt::format("\"tls_handshake_timeout\" in {} must be longer than 0s: a handshake takes some time",
                               reader.context()));
    } else {
      tls.handshake_timeout = *v;
    }
  }
  if (certificates && tls.certificates.empty()) {
    errors.error(reader.position("tls_certificate"),
                 fmt::format("\"tls_certificate\" in {} names no file", reader.context()));
  }
  if (table.get("tls_key") == nullptr) {
    reader.require("tls_key");
  } else if (keys && certificates && tls.keys.size() != tls.certificates.size()) {
    errors.error(reader.position("tls_key"),
                 fmt::format("\"tls_key\" in {} names {} key(s) for {} certificate(s): one key for each, in the "
                             "same order",
                             reader.context(), tls.keys.size(), tls.certificates.size()));
  }
  for (const char* key : {"tls_certificate", "tls_key"}) {
    const StringList& paths = std::string_view(key) == "tls_certificate" ? tls.certificates : tls.keys;
    for (std::size_t i = 0; i < paths.size(); ++i) {
      if (!paths[i].starts_with('/')) {
        errors.error(entry_position(reader, key, i), fmt::format("\"{}\" in {} must be an absolute path, not {}",
                                                                 key, reader.context(), quote_text(paths[i])));
      }
    }
  }
  if (!tls.client_ca.empty() && !tls.client_ca.starts_with('/')) {
    errors.error(reader.position("tls_client_ca"), fmt::format("\"tls_client_ca\" in {} must be an absolute path, "
                                                               "not {}",
                                                               reader.context(), quote_text(tls.client_ca)));
  }
  const bool verifies = tls.verify_client != TlsVerifyClient::off;
  if (verifies && table.get("tls_client_ca") == nullptr) {
    errors.error(reader.position("tls_verify_client"),
                 fmt::format("\"tls_verify_client\" in {} needs tls_client_ca: the CAs client certificates must "
                             "chain to",
                             reader.context()));
  }
  if (!verifies && table.get("tls_client_ca") != nullptr) {
    errors.error(reader.position("tls_client_ca"),
                 fmt::format("\"tls_client_ca\" in {} applies only with tls_verify_client = \"optional\" or "
                             "\"require\"",
                             reader.context()));
  }
  for (std::size_t i = 0; i < tls.alpn.size(); ++i) {
    if (tls.alpn[i].empty() || tls.alpn[i].size() > 255) {
      errors.error(entry_position(reader, "tls_alpn", i),
                   fmt::format("\"tls_alpn\" in {}: a protocol name has 1 to 255 bytes, not {}", reader.context(),
                               tls.alpn[i].size()));
    }
  }
  if (errors.size() != errors_before) return;
  // The files themselves, as the start will load them: --check knows then.
  for (const auto& finding : check_tls_files(tls)) {
    const SourcePos pos = entry_position(reader, finding.key, finding.index);
    const std::string message = fmt::format("\"{}\" in {}: {}", finding.key, reader.context(), finding.message);
    if (finding.error) {
      errors.error(pos, message);
    } else {
      errors.warning(pos, message);
    }
  }
  l.tls = std::move(tls);
}

void read_listener_settings(TableReader& reader, ListenerConfig& l) {
  const bool ip = l.address.is_ip();
  if (auto v = reader.integer("backlog", 1, 65535)) l.backlog = static_cast<int>(*v);
  if (auto v = reader.boolean("reuse_port")) l.reuse_port = *v;
  if (auto v = reader.boolean("keepalive")) l.keepalive = *v;
  if (auto v = reader.boolean("nodelay")) l.nodelay = *v;
  if (auto v = reader.boolean("v6only")) l.v6only = *v;
  read_defer_accept(reader, l);
  if (auto v = reader.string("socket_mode")) {
    unsigned mode = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), mode, 8);
    if (v->empty() || ec != std::errc{} || end != v->data() + v->size() || mode > 0777) {
      reader.errors().error(reader.position("socket_mode"),
                            fmt::format("\"socket_mode\" in {} must be an octal mode such as \"0660\", not {}",
                                        reader.context(), quote_text(*v)));
    } else {
      l.socket_mode = mode;
    }
  }
  // Names are resolved now so that --check catches a typo, not the start.
  if (auto v = reader.string("socket_user")) {
    if (const auto ids = find_user(*v)) {
      l.socket_user = *v;
      l.socket_uid = ids->uid;
    } else {
      reader.errors().error(reader.position("socket_user"), fmt::format("\"socket_user\" in {}: user {} does not exist",
                                                                        reader.context(), quote_text(*v)));
    }
  }
  if (auto v = reader.string("socket_group")) {
    if (const auto gid = find_group(*v)) {
      l.socket_group = *v;
      l.socket_gid = *gid;
    } else {
      reader.errors().error(reader.position("socket_group"),
                            fmt::format("\"socket_group\" in {}: group {} does not exist", reader.context(),
                                        quote_text(*v)));
    }
  }
  if (auto v = reader.integer("max_connections", 0, max_count)) l.max_connections = static_cast<std::size_t>(*v);
  if (auto v = reader.choice("on_limit", {"pause", "reject"})) l.on_limit = *v == "pause" ? OnLimit::pause : OnLimit::reject;
  if (auto v = reader.integer("max_per_source", 0, max_count)) l.max_per_source = static_cast<std::size_t>(*v);
  if (auto v = reader.integer("source_prefix_v4", 1, 32)) l.source_prefix_v4 = static_cast<unsigned>(*v);
  if (auto v = reader.integer("source_prefix_v6", 1, 128)) l.source_prefix_v6 = static_cast<unsigned>(*v);
  if (auto v = reader.integer("rate", 0, max_count)) l.rate = static_cast<std::size_t>(*v);
  if (auto v = reader.integer("burst", 0, max_count)) l.burst = static_cast<std::size_t>(*v);
  if (auto v = reader.duration("idle_timeout")) l.idle_timeout = *v;
  if (auto v = reader.duration("session_timeout")) l.session_timeout = *v;
  if (auto v = reader.prefixes("allow")) l.allow = std::move(*v);
  if (auto v = reader.prefixes("deny")) l.deny = std::move(*v);
  if (auto v = reader.boolean("proxy_protocol")) l.proxy_protocol = *v;
  if (auto v = reader.duration("proxy_protocol_timeout")) {
    if (v->count() == 0) {
      // Every connection would be refused before its header could arrive.
      reader.errors().error(reader.position("proxy_protocol_timeout"),
                            fmt::format("\"proxy_protocol_timeout\" in {} must be longer than 0s: the header has to "
                                        "arrive in some time",
                                        reader.context()));
    } else {
      l.proxy_protocol_timeout = *v;
    }
  }

  const auto& table = reader.table();
  only_for(reader, table, "v6only", l.address.kind == Address::Kind::ipv6, "IPv6 addresses");
  for (const char* key : {"socket_mode", "socket_user", "socket_group"}) {
    only_for(reader, table, key, !ip, "Unix socket addresses");
  }
  for (const char* key : {"reuse_port", "keepalive", "nodelay", "defer_accept"}) {
    only_for(reader, table, key, ip, "IP addresses");
  }
  // Without an IP there is nothing to match or group by, unless a PROXY
  // header supplies the client's.
  for (const char* key : {"allow", "deny", "max_per_source"}) {
    only_for(reader, table, key, ip || l.proxy_protocol, "IP addresses (or with proxy_protocol = true)");
  }
  only_for(reader, table, "burst", l.rate > 0, "listeners with a rate");
  only_for(reader, table, "proxy_protocol_timeout", l.proxy_protocol, "listeners with proxy_protocol = true");
  if (auto v = reader.boolean("access_log")) l.access_log = *v;
  read_tls(reader, l);
}

std::optional<ListenerConfig> read_listener(const toml::table& table, std::size_t index, const Registry& registry,
                                            Diagnostics& errors) {
  const std::size_t errors_before = errors.size();
  ListenerConfig listener;
  listener.pos = position_of(table.source());
  TableReader reader(table, fmt::format("listener #{}", index + 1), errors);

  auto name = reader.string("name");
  if (name && name->empty()) {
    errors.error(reader.position("name"), "\"name\" in listener #" + std::to_string(index + 1) + " must not be empty");
  } else if (name && escape_controls(*name) != *name) {
    // A name is printed in every log line of its listener: a newline or an
    // escape sequence there would be escaped in each, so it is refused once.
    errors.error(reader.position("name"), fmt::format("\"name\" in listener #{} must not hold control characters, "
                                                      "not {}",
                                                      index + 1, quote_text(*name)));
  }
  reader.require("address");
  auto address = reader.address("address");
  listener.handler = reader.string("handler").value_or("greeting");

  const HandlerType* type = registry.find(listener.handler);
  std::vector<std::string> candidates = listener_keys;
  if (type == nullptr) {
    if (table.get("handler") != nullptr && table.get("handler")->is_string()) {
      std::string message = fmt::format("unknown handler type {}", quote_text(listener.handler));
      const std::string hint = closest_match(listener.handler, registry.names());
      if (!hint.empty()) message += fmt::format(" (did you mean \"{}\"?)", hint);
      message += fmt::format("; known types: {}", fmt::join(registry.names(), ", "));
      errors.error(reader.position("handler"), std::move(message));
    }
    // Without a type, its options cannot be judged: accept them silently
    // rather than report each as unknown.
    for (const auto& [key, value] : table) reader.accept(key.str());
  } else {
    for (const auto& spec : type->options) {
      candidates.push_back(spec.name);
      if (std::find(listener_keys.begin(), listener_keys.end(), spec.name) != listener_keys.end()) continue;
      if (auto value = reader.option(spec)) {
        listener.options.set(spec.name, std::move(*value), reader.position(spec.name), true);
      } else if (table.get(spec.name) == nullptr) {
        if (spec.default_value) {
          listener.options.set(spec.name, *spec.default_value, listener.pos, false);
        } else {
          reader.require(spec.name);
        }
      }
    }
  }
  if (address) {
    listener.address = *address;
    listener.name = name.value_or(address->to_string());
    read_listener_settings(reader, listener);
  } else {
    // Without an address the settings that depend on it cannot be judged.
    for (const auto& key : listener_keys) reader.accept(key);
  }
  reader.reject_unknown(candidates);
  if (type != nullptr && type->validate && errors.size() == errors_before) {
    type->validate(listener.options, errors);
  }
  if (errors.size() != errors_before) return std::nullopt;
  return listener;
}

// Plugins register handler types, so they load before listeners are read.
// Type mistakes in the list itself are left to read_daemon.
void load_listed_plugins(const toml::table& root, const PluginLoader& load_plugin, Diagnostics& errors) {
  const auto* daemon = root.get_as<toml::table>("daemon");
  const auto* plugins = daemon ? daemon->get_as<toml::array>("plugins") : nullptr;
  if (plugins == nullptr) return;
  for (const auto& entry : *plugins) {
    const auto* path = entry.as_string();
    if (path == nullptr) continue;
    if (auto loaded = load_plugin(path->get()); !loaded) {
      errors.error(position_of(entry.source()),
                   fmt::format("plugin {}: {}", quote_text(path->get()), loaded.error().message()));
    }
  }
}

// A Unix socket file belongs by default to the user and group porticod
// serves as, so that the service's own group can be let in with socket_mode.
void default_socket_owners(Config& config) {
  const auto& daemon = config.daemon;
  if (daemon.user.empty()) return;
  const auto user = find_user(daemon.user);
  if (!user) return;  // reported by read_daemon
  std::optional<gid_t> gid = user->gid;
  if (!daemon.group.empty()) gid = find_group(daemon.group);
  for (auto& listener : config.listeners) {
    if (listener.address.is_ip()) continue;
    if (listener.socket_user.empty()) listener.socket_uid = user->uid;
    if (listener.socket_group.empty()) listener.socket_gid = gid;
  }
}

// A listener's access_log chooses among what [daemon] access_log writes:
// with none, the key would do nothing, which would be a silent surprise.
void check_access_log(const Config& config, const toml::table& root, Diagnostics& errors) {
  const auto* daemon = root.get_as<toml::table>("daemon");
  const toml::node* daemon_key = daemon ? daemon->get("access_log") : nullptr;
  // On, or a mistake already reported.
  if (config.daemon.access_log_on() || (daemon_key && daemon_key->value_or(std::string_view()) != "off")) return;
  const auto* listeners = root.get_as<toml::array>("listener");
  if (listeners == nullptr) return;
  for (std::size_t i = 0; i < listeners->size(); ++i) {
    const auto* table = listeners->get(i)->as_table();
    const toml::node* key = table ? table->get("access_log") : nullptr;
    if (key == nullptr) continue;
    errors.error(position_of(key->source()),
                 fmt::format("\"access_log\" in listener #{} applies only when [daemon] access_log is on, and it is "
                             "\"off\"{}",
                             i + 1, daemon_key ? "" : " by default"));
  }
}

// Each duplicate is reported once, against the first listener that used the
// name or address: a file with n copies of one listener gets n-1 errors, not
// one per pair.
void check_unique(const Config& config, Diagnostics& errors) {
  std::unordered_map<std::string_view, const ListenerConfig*> names;
  std::unordered_map<std::string, const ListenerConfig*> addresses;
  for (const auto& listener : config.listeners) {
    // Port 0 asks for any free port, so two of them never collide: neither
    // do their addresses nor the names taken from them when none is given.
    const bool any_port = listener.address.is_ip() && listener.address.port == 0;
    const std::string address = listener.address.to_string();
    if (!(any_port && listener.name == address)) {
      const auto [it, fresh] = names.emplace(listener.name, &listener);
      if (!fresh) {
        errors.error(listener.pos, fmt::format("duplicate listener name {} (first used at {}:{})",
                                               quote_text(listener.name), it->second->pos.line,
                                               it->second->pos.column));
      }
    }
    if (!any_port) {
      const auto [it, fresh] = addresses.emplace(address, &listener);
      if (!fresh) {
        errors.error(listener.pos, fmt::format("duplicate address {} (already used by listener {} at {}:{})",
                                               quote_text(address), quote_text(it->second->name),
                                               it->second->pos.line, it->second->pos.column));
      }
    }
  }
}

// Options that switch users need root in the serving process, which
// [daemon] user gives up right after binding.
void check_root_options(const Config& config, const Registry& registry, Diagnostics& errors) {
  if (config.daemon.user.empty() && config.daemon.group.empty()) return;
  const std::string drop = config.daemon.user.empty() ? fmt::format("group = {}", quote_text(config.daemon.group))
                                                      : fmt::format("user = {}", quote_text(config.daemon.user));
  for (const auto& listener : config.listeners) {
    const HandlerType* type = registry.find(listener.handler);
    if (type == nullptr) continue;
    for (const auto& spec : type->options) {
      if (!spec.needs_root || !listener.options.is_explicit(spec.name)) continue;
      if (spec.type == OptionType::string && listener.options.string(spec.name).empty()) continue;
      errors.error(listener.options.position(spec.name),
                   fmt::format("\"{}\" in listener {} needs porticod to keep root, but [daemon] {} drops root "
                               "after binding; remove one of the two (with no [daemon] user, set allow_root = true)",
                               spec.name, quote_text(listener.name), drop));
    }
  }
}

}  // namespace

SourcePos DaemonConfig::position(std::string_view key) const {
  if (const auto it = positions.find(key); it != positions.end()) return it->second;
  if (pos.line != 0) return pos;
  return SourcePos{1, 1};
}

std::string_view to_string(AccessLogFormat format) {
  return format == AccessLogFormat::json ? "json" : "logfmt";
}

std::string_view to_string(OnLimit on_limit) { return on_limit == OnLimit::pause ? "pause" : "reject"; }

std::string_view to_string(LogLevel level) { return level_names[static_cast<int>(level)]; }

std::optional<LogLevel> parse_log_level(std::string_view text) {
  for (std::size_t i = 0; i < std::size(level_names); ++i) {
    if (text == level_names[i]) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

LoadResult parse_config(std::string_view text, std::string source_name, const Registry& registry,
                        const PluginLoader& load_plugin) {
  LoadResult result{std::nullopt, Diagnostics(source_name)};
  Diagnostics& errors = result.errors;
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    errors.error(position_of(e.source()), std::string(e.description()));
    return result;
  }
  if (load_plugin) load_listed_plugins(root, load_plugin, errors);

  Config config;
  config.source = source_name;
  bool saw_listener = false;
  for (const auto& [key, node] : root) {
    const std::string_view name = key.str();
    if (name == "daemon") {
      read_daemon(node, config.daemon, errors);
    } else if (name == "listener") {
      saw_listener = true;
      const auto* array = node.as_array();
      if (array == nullptr || !array->is_array_of_tables()) {
        errors.error(position_of(node.source()), "\"listener\" must be an array of tables: write each as [[listener]]");
        continue;
      }
      for (std::size_t i = 0; i < array->size(); ++i) {
        if (auto listener = read_listener(*array->get(i)->as_table(), i, registry, errors)) {
          config.listeners.push_back(std::move(*listener));
        }
      }
    } else {
      std::string message = fmt::format("unknown key {} at the top level", quote_text(name));
      const std::string hint = closest_match(name, {"daemon", "listener"});
      if (!hint.empty()) message += fmt::format(" (did you mean \"{}\"?)", hint);
      message += "; expected [daemon] or [[listener]]";
      errors.error(position_of(key.source()), std::move(message));
    }
  }
  if (!saw_listener) errors.error(SourcePos{1, 1}, "no [[listener]] defined: there would be nothing to serve");
  default_socket_owners(config);
  check_access_log(config, root, errors);
  check_unique(config, errors);
  check_root_options(config, registry, errors);

  if (errors.empty()) result.config = std::move(config);
  return result;
}

namespace {

std::string_view file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// The file's text, or why it cannot be had. Only a regular file: a device
// such as /dev/zero never ends, a directory reads as empty, a FIFO waits
// for a writer (O_NONBLOCK: not even the open waits).
std::optional<std::string> read_config_text(const std::string& path, std::string& why) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    why = std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    why = fmt::format("it is {}; a configuration is a regular file", file_kind(st.st_mode));
    ::close(fd);
    return std::nullopt;
  }
  std::string text;
  // Read one byte past the limit to tell a file at the limit from a larger
  // one, whatever its size said a moment ago.
  text.resize(std::min<std::size_t>(static_cast<std::size_t>(st.st_size), max_config_size) + 1);
  std::size_t got = 0;
  for (;;) {
    if (got == text.size()) {
      if (got > max_config_size) break;
      text.resize(std::min(text.size() * 2, max_config_size + 1));
    }
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      why = std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (got > max_config_size) {
    why = fmt::format("it is larger than {} MiB, the most a configuration may be", max_config_size >> 20);
    return std::nullopt;
  }
  text.resize(got);
  return text;
}

}  // namespace

std::optional<std::string> read_control_socket(const std::string& path, Diagnostics& errors) {
  std::string why;
  const auto text = read_config_text(path, why);
  if (!text) {
    errors.error(SourcePos{0, 0}, fmt::format("cannot read the file: {}", why));
    return std::nullopt;
  }
  toml::table root;
  try {
    root = toml::parse(*text, path);
  } catch (const toml::parse_error& e) {
    errors.error(position_of(e.source()), std::string(e.description()));
    return std::nullopt;
  }
  const auto* daemon = root.get_as<toml::table>("daemon");
  if (daemon == nullptr) return std::string();
  TableReader reader(*daemon, "[daemon]", errors);
  const std::size_t before = errors.size();
  auto control = read_control_socket_key(reader);
  if (errors.size() != before) return std::nullopt;
  return control.value_or(std::string());
}

LoadResult load_config_file(const std::string& path, const Registry& registry, const PluginLoader& load_plugin) {
  std::string why;
  auto text = read_config_text(path, why);
  if (!text) {
    LoadResult result{std::nullopt, Diagnostics(path)};
    result.errors.error(SourcePos{0, 0}, fmt::format("cannot read the file: {}", why));
    return result;
  }
  return parse_config(*text, path, registry, load_plugin);
}

}  // namespace portico
