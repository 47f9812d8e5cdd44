#pragma once
// porticod's life once its configuration is valid: bind, drop privileges,
// tell systemd, serve, reload on SIGHUP, reopen logs on SIGUSR1, drain on
// SIGTERM/SIGINT.

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/logger.h>

#include <portico/config.hpp>
#include <portico/registry.hpp>
#include <portico/server.hpp>

#include "daemon/access_log.hpp"
#include "daemon/pid_file.hpp"
#include "daemon/systemd.hpp"
#include "daemon/upgrade.hpp"

namespace portico {

// Where the configuration comes from, so that a reload reads it again.
struct ConfigSource {
  std::string path;        // empty for the embedded default
  PluginLoader load_plugin;
  LoadResult load(const Registry& registry) const;
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

 private:
  void wait_for_stop();
  void wait_for_hup();
  void wait_for_usr1();
  void wait_for_usr2();
  // SIGUSR2: start the new binary and, once it serves, hand over to it.
  void upgrade();
  // Stops accepting and lets the connections finish; `handed_over`: the
  // listening sockets went to a new process.
  void stop(std::string_view why, bool handed_over);
  void reload();
  void apply_reload(LoadResult loaded);
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
  int upgrade_notification_ = -1;  // this process is the new one of an upgrade
  bool handed_over_ = false;
  std::unique_ptr<PidFile> pid_file_;
  std::shared_ptr<AccessLog> access_log_;  // when [daemon] access_log is on
  std::map<std::string, std::pair<dev_t, ino_t>> socket_files_;
  bool stopping_ = false;
  // A reload reads and validates the file on `loader_`, off the event loop.
  // While it runs, that thread alone uses the registry (plugin loading adds
  // to it); the loop uses it again only in apply_reload(), which the
  // loader posts when done.
  std::thread loader_;
  bool loading_ = false;
  bool reload_again_ = false;  // a SIGHUP came while loading
};

}  // namespace portico
