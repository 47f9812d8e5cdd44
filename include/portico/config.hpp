#pragma once
// The configuration as plain, validated structs. Nothing outside the loader
// sees TOML.

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <portico/address.hpp>
#include <portico/cidr.hpp>
#include <portico/diagnostics.hpp>
#include <portico/duration.hpp>
#include <portico/options.hpp>
#include <portico/result.hpp>

namespace portico {

class Registry;

enum class LogLevel { trace, debug, info, warn, error, critical, off };
std::string_view to_string(LogLevel level);
std::optional<LogLevel> parse_log_level(std::string_view text);

// How the access log writes a connection: logfmt (key=value pairs) or one
// JSON object a line.
enum class AccessLogFormat { logfmt, json };
std::string_view to_string(AccessLogFormat format);

struct DaemonConfig {
  LogLevel log_level = LogLevel::info;
  Duration shutdown_timeout = std::chrono::seconds(10);
  std::size_t max_connections = 0;  // across all listeners; 0 = no cap
  std::string user;                 // drop to this user after binding (when root)
  std::string group;                // and this group (default: the user's)
  bool allow_root = false;          // serve as root when no user is given
  std::string pid_file;
  std::string log_file;             // empty = stderr
  std::vector<std::string> plugins; // shared objects registering handler types
  std::string control_socket;       // porticoctl's Unix socket; empty = none
  // One line per connection: "off", "stderr", "journal", or a file's
  // absolute path.
  std::string access_log = "off";
  AccessLogFormat access_log_format = AccessLogFormat::logfmt;
  bool access_log_on() const { return access_log != "off"; }

  // Where the [daemon] table and each key's value were written, for the
  // checks made against the host (at --check and at start).
  SourcePos pos;                    // {0,0} when the file has no [daemon]
  std::map<std::string, SourcePos, std::less<>> positions;
  // The position of `key`'s value; else of the [daemon] table; else 1:1.
  SourcePos position(std::string_view key) const;
};

// What a listener does when it has max_connections open: stop accepting
// (clients wait in the kernel backlog) or accept and close at once.
enum class OnLimit { pause, reject };
std::string_view to_string(OnLimit on_limit);

// TLS on a listener: the server's side of every connection, before the
// handler runs.
enum class TlsVerifyClient { off, optional, require };
enum class TlsVersion { tls1_2, tls1_3 };
std::string_view to_string(TlsVerifyClient verify);
std::string_view to_string(TlsVersion version);

struct TlsConfig {
  // PEM files, leaf first then chain, each with its key; the first pair is
  // the default, the others are chosen by the name the client asks for
  // (SNI).
  std::vector<std::string> certificates;
  std::vector<std::string> keys;
  std::string client_ca;  // verify client certificates against these CAs
  TlsVerifyClient verify_client = TlsVerifyClient::off;
  std::vector<std::string> alpn;  // when set, a client must agree on one of these
  TlsVersion min_version = TlsVersion::tls1_2;
  Duration handshake_timeout = std::chrono::seconds(10);

  friend bool operator==(const TlsConfig&, const TlsConfig&) = default;
};

struct ListenerConfig {
  std::string name;      // unique; the address when the file names none
  Address address;
  std::string handler;   // a type in the registry
  Options options;       // that type's options, defaults filled in
  SourcePos pos;         // the [[listener]] header

  // Socket
  int backlog = 1024;
  bool reuse_port = false;
  bool keepalive = false;
  bool nodelay = true;
  bool v6only = true;                     // IPv6 listeners only
  // IP listeners: hand a connection over only once its first bytes came
  // (TCP_DEFER_ACCEPT), or after this long. Unset means "auto": 1s when the
  // client speaks first (the handler waits for it, or proxy_protocol), off
  // otherwise. Zero is off.
  std::optional<Duration> defer_accept;
  std::optional<unsigned> socket_mode;    // Unix listeners only, e.g. 0660
  // Unix listeners only: the owner and group the socket file gets at bind
  // time (while porticod is still root), as names written in the file
  // (empty: not written) and resolved at load. Unwritten, they are those
  // porticod serves as: the [daemon] user and group (or the user's primary
  // group), which bind time applies only when running as root.
  std::string socket_user;
  std::string socket_group;
  std::optional<uid_t> socket_uid;
  std::optional<gid_t> socket_gid;

  // Limits; 0 means none
  std::size_t max_connections = 0;
  OnLimit on_limit = OnLimit::pause;
  std::size_t max_per_source = 0;
  unsigned source_prefix_v4 = 32;         // how max_per_source groups clients
  unsigned source_prefix_v6 = 64;
  std::size_t rate = 0;                   // new connections per second
  std::size_t burst = 0;                  // token bucket size; 0 = rate
  Duration idle_timeout{0};
  Duration session_timeout{0};

  // Access: deny wins; a non-empty allow list refuses everything else.
  std::vector<Cidr> allow;
  std::vector<Cidr> deny;

  // PROXY protocol v1/v2 header expected before any data.
  bool proxy_protocol = false;
  Duration proxy_protocol_timeout = std::chrono::seconds(5);

  // Whether the server's ConnectionObserver (the access log) hears of this
  // listener's connections. The key may be written only while [daemon]
  // access_log is on.
  bool access_log = true;

  // TLS, when tls_certificate is set.
  std::optional<TlsConfig> tls;
};

// Whether `next`, a listener of a reloaded file, is the `running` one, which
// then keeps its socket. Port 0 asks for any free port, so several listeners
// may share such an address: there only the name tells them apart.
bool same_listener(const ListenerConfig& running, const ListenerConfig& next);

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

// Loads one shared object named in [daemon] plugins (which registers its
// handler types into the registry the config is then checked against), or
// says why it cannot.
using PluginLoader = std::function<Result<void>(const std::string& path)>;

// Parses and validates `text`; `source_name` names it in messages. When
// `load_plugin` is given, the plugins the text lists are loaded first, so
// that their handler types validate; a plugin that fails to load is
// reported at its position in the list.
LoadResult parse_config(std::string_view text, std::string source_name, const Registry& registry,
                        const PluginLoader& load_plugin = {});
// The largest configuration file read: a thousand listeners take about
// 100 KiB, and a file that does not end (a device) must not fill memory.
inline constexpr std::size_t max_config_size = std::size_t{4} << 20;

// Reads and parses the file at `path`, which must be a regular file of at
// most max_config_size bytes. A file that cannot be read is reported as one
// diagnostic without a position.
LoadResult load_config_file(const std::string& path, const Registry& registry, const PluginLoader& load_plugin = {});

// The effective configuration as TOML, every default written out.
std::string print_config(const Config& config, const Registry& registry);

// [daemon] control_socket of the file at `path` ("" when not set), for
// porticoctl: the file is read and parsed as TOML and that key alone is
// checked, so that neither plugins nor the host's users and certificates
// need to be at hand. nullopt with `errors` filled (FILE:LINE:COL) when
// the file cannot be read or the value is wrong.
std::optional<std::string> read_control_socket(const std::string& path, Diagnostics& errors);

// What a reload from `before` to `after` changes. Listeners are matched as
// Server::reload() matches them: by address, in order, so that a kept
// listener keeps its socket whatever else changed (its name included).
struct ConfigDiff {
  struct Listener {
    std::string name;
    std::string address;
    std::string handler;
  };
  // One setting whose value differs, as print_config() writes values;
  // empty for a key the side does not have (TLS keys without TLS).
  struct Change {
    std::string scope;  // "[daemon]", or the listener's name after the reload
    std::string key;
    std::string before;
    std::string after;
    bool restart = false;  // takes effect only when porticod restarts
  };
  std::vector<Listener> kept;
  std::vector<Listener> added;
  std::vector<Listener> removed;
  std::vector<Change> changes;

  bool empty() const { return added.empty() && removed.empty() && changes.empty(); }
  // One line each: "+ listener NAME ADDRESS (HANDLER)", "- listener ...",
  // "~ SCOPE KEY: BEFORE -> AFTER"; nothing when empty().
  std::vector<std::string> lines() const;
};
ConfigDiff diff_configs(const Config& before, const Config& after, const Registry& registry);

}  // namespace portico
