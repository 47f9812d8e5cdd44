#pragma once
// porticod's life once its configuration is valid: bind, drop privileges,
// tell systemd, serve, reload on SIGHUP (or porticoctl reload), answer the
// control socket, reopen logs on SIGUSR1, drain on SIGTERM/SIGINT.

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/logger.h>

#include <portico/config.hpp>
#include <portico/registry.hpp>
#include <portico/server.hpp>

#include "daemon/access_log.hpp"
#include "daemon/control_server.hpp"
#include "daemon/pid_file.hpp"
#include "daemon/systemd.hpp"
#include "daemon/upgrade.hpp"

namespace portico {

// Where the configuration comes from, so that a reload reads it again.
struct ConfigSource {
  std::string path;        // empty for the embedded default
  PluginLoader load_plugin;
  // The file's name as messages give it: the path, or the embedded default's name.
  std::string name() const;
  // Whether the plugin at a path is loaded already.
  std::function<bool(const std::string&)> plugin_loaded;
  LoadResult load(const Registry& registry) const { return load(path, registry, true); }
  // Loads `file` (empty: the embedded default). Unless `load_plugins`, a
  // plugin it lists that is not loaded yet is an error rather than loaded:
  // `porticoctl diff -c FILE` must not run code from any file it is shown.
  LoadResult load(const std::string& file, const Registry& registry, bool load_plugins) const;
};

// What the configuration asks of this host that --check can know without
// binding: the root rule (when run as root), the directories of pid_file
// and log_file. Each error at the position of the key concerned.
Diagnostics check_host(const Config& config);

class Runtime {
 public:
  // `argv` is the command line, to start the same program again on a
  // binary upgrade (SIGUSR2).
  Runtime(const Registry& registry, std::shared_ptr<spdlog::logger> log, ConfigSource source,
          std::optional<LogLevel> level_override, std::vector<std::string> argv);
  // Waits for a reload still being read.
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Serves `config` until stopped; returns the process exit code.
  int run(const Config& config);

  // The outcome of one reload, for whoever asked.
  struct ReloadOutcome {
    enum class Status { ok, invalid, failed, stopping, upgrading };
    Status result = Status::ok;
    std::string file;           // what was read
    Diagnostics errors{""};     // invalid: the mistakes, FILE:LINE:COL
    std::string message;        // failed, upgrading: why nothing changed; ok: the server's summary
    ConfigDiff diff;            // ok: what changed
    std::vector<std::string> notes;  // ok: changes that wait for a restart
  };
  using ReloadDone = std::function<void(const ReloadOutcome&)>;
  // Reads the configuration file again and applies it, as SIGHUP does;
  // `trigger` says who asked, for the log ("received SIGHUP"), and `done`
  // (may be empty) hears the outcome. A request that comes while another
  // reload reads the file gets a reload of its own after that one (the file
  // may have changed since it was read); requests that come before that
  // one starts reading share its outcome.
  void reload(std::string trigger, ReloadDone done);

  // The outcome of one upgrade, for whoever asked.
  struct UpgradeOutcome {
    enum class Status { ok, failed, busy, stopping };
    Status result = Status::ok;
    pid_t pid = 0;                // the new process, once one was started
    std::string message;          // failed, busy: the sentence the log has
    int exit_status = -1;         // failed: the new process's exit status, when it exited
    std::size_t connections = 0;  // ok: the connections this process drains
  };
  using UpgradeDone = std::function<void(const UpgradeOutcome&)>;
  // Starts the binary at this program's path again and hands the listening
  // sockets over once the new process serves them all, as SIGUSR2 does;
  // `trigger` says who asked, for the log, `timeout` how long the new
  // process has, and `done` (may be empty) hears the outcome, before this
  // process stops accepting. One asked while a reload is in progress
  // starts once the reload is applied, so that the new process gets the
  // sockets the new configuration has; one asked while another upgrade is
  // in progress is refused (and so is a reload then: the new process loads
  // the configuration itself).
  void upgrade(std::string trigger, Duration timeout, UpgradeDone done);

 private:
  void wait_for_stop();
  void wait_for_hup();
  void wait_for_usr1();
  void wait_for_usr2();
  // Stops accepting and lets the connections finish; `handed_over`: the
  // listening sockets went to a new process.
  void stop(std::string_view why, bool handed_over);
  void apply_reload(LoadResult loaded, std::vector<ReloadDone> waiters);

  // Work for the loader thread: one file read and validated at a time, in
  // the order asked.
  struct LoadJob {
    std::string path;             // empty: the embedded default
    bool load_plugins = true;
    std::function<void()> started;  // on the loop, as the read begins
    std::function<void(LoadResult)> done;  // on the loop, with the outcome
  };
  void load(LoadJob job);
  void start_next_load();

  // The control socket's requests (daemon/runtime_control.cpp).
  void bind_control_socket(const Config& config);
  void answer(const control::Request& request, const ControlServer::Peer& peer, ControlServer::Reply reply);
  ControlServer::Answer status_answer(bool json) const;
  ControlServer::Answer connections_answer(const control::Request& request) const;
  void reload_request(const control::Request& request, const ControlServer::Peer& peer, ControlServer::Reply reply);
  // What status says of an upgrade: "none", "waiting_for_reload" (asked
  // during a reload), "starting" (the new process runs, not yet ready).
  std::string_view upgrade_state() const;
  void upgrade_request(const control::Request& request, const ControlServer::Peer& peer, ControlServer::Reply reply);
  void diff_request(const control::Request& request, ControlServer::Reply reply);
  void drain_request(const control::Request& request, const ControlServer::Peer& peer, ControlServer::Reply reply);
  void probe_request(const control::Request& request, ControlServer::Reply reply);
  void apply_log_level(const Config& config);
  // Notes the Unix socket files that porticod created (not those systemd
  // passed in), to remove them on exit if their listener could not.
  void note_socket_files(const Config& config, const std::map<std::string, ino_t>& before);
  void remove_files();

  boost::asio::io_context io_{1};  // one thread: Asio may skip its locking
  const Registry& registry_;
  std::shared_ptr<spdlog::logger> log_;
  ConfigSource source_;
  std::optional<LogLevel> level_override_;
  Config config_;
  Server server_;
  SystemdNotifier notifier_;
  boost::asio::signal_set stop_signals_;
  boost::asio::signal_set hup_;
  boost::asio::signal_set usr1_;
  boost::asio::signal_set usr2_;
  std::vector<std::string> argv_;
  std::string own_path_;
  std::unique_ptr<Successor> successor_;  // an upgrade in progress
  bool upgrade_waiting_ = false;  // an upgrade waits for a reload to be applied
  int upgrade_notification_ = -1;  // this process is the new one of an upgrade
  bool handed_over_ = false;
  std::unique_ptr<PidFile> pid_file_;
  std::shared_ptr<AccessLog> access_log_;  // when [daemon] access_log is on
  std::map<std::string, std::pair<dev_t, ino_t>> socket_files_;
  bool stopping_ = false;
  // A reload (or a diff) reads and validates the file on `loader_`, off the
  // event loop. While it runs, that thread alone uses the registry (plugin
  // loading adds to it); the loop uses it again only once the loader
  // posted its result.
  std::thread loader_;
  bool loading_ = false;
  std::deque<LoadJob> load_queue_;
  // Reload requests waiting for a reload that has not begun reading.
  std::vector<ReloadDone> reload_waiters_;
  bool reload_queued_ = false;
  // A reload reads its file or is being applied.
  bool reload_running_ = false;
  // The requests the running reload answers; stop() answers them at once.
  std::shared_ptr<std::vector<ReloadDone>> running_reload_waiters_;
  // What must wait until no reload is queued or running (an upgrade).
  std::vector<std::function<void()>> after_reload_;
  // What must wait until no load runs (a probe looks handler types up in
  // the registry, which a load may add to).
  std::vector<std::function<void()>> after_load_;

  std::unique_ptr<ControlServer> control_;
  // The control socket's file as made, to remove on exit if it is still
  // that file (after an upgrade, the new process's is there instead).
  std::string control_path_;
  std::pair<dev_t, ino_t> control_file_{0, 0};
  std::chrono::system_clock::time_point started_at_ = std::chrono::system_clock::now();
  std::chrono::system_clock::time_point loaded_at_ = started_at_;  // of the running configuration
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_failed_ = 0;
};

}  // namespace portico
