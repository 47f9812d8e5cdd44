#include "daemon/runtime.hpp"

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include <portico/text.hpp>

#include "daemon/exit_codes.hpp"
#include "daemon/log_setup.hpp"
#include "daemon/privileges.hpp"

namespace portico {

namespace {

// The inode of each Unix listener's path that exists now.
std::map<std::string, ino_t> unix_socket_inodes(const Config& config) {
  std::map<std::string, ino_t> inodes;
  for (const auto& listener : config.listeners) {
    struct stat st {};
    if (!listener.address.is_ip() && lstat(listener.address.path.c_str(), &st) == 0) {
      inodes[listener.address.path] = st.st_ino;
    }
  }
  return inodes;
}

// Why a file porticod made could not be removed on exit, for the log.
std::string left_behind(std::string_view what, const std::string& path, int error, std::string_view after) {
  std::string text = fmt::format("{} {} left behind: cannot remove it: {}", what, escape_text(path), strerror(error));
  if (error == EACCES || error == EPERM) {
    text += fmt::format("; porticod serves as uid {}, who may not write {} (root could, before porticod dropped "
                        "root): use a directory that user owns, or remove it by hand",
                        geteuid(), escape_text(std::filesystem::path(path).parent_path().string()));
  }
  return text + std::string(after);
}

}  // namespace

std::string ConfigSource::name() const { return path.empty() ? std::string(embedded_default_name) : path; }

LoadResult ConfigSource::load(const std::string& file, const Registry& registry, bool load_plugins) const {
  PluginLoader loader = load_plugin;
  if (!load_plugins) {
    loader = [this](const std::string& plugin) -> Result<void> {
      if (plugin_loaded && plugin_loaded(plugin)) return {};
      return fail("not loaded by porticod; only a reload of porticod's own file loads new plugins");
    };
  }
  if (file.empty()) {
    return parse_config(embedded_default_config, std::string(embedded_default_name), registry, loader);
  }
  return load_config_file(file, registry, loader);
}

Diagnostics check_host(const Config& config) {
  Diagnostics errors(config.source);
  check_serving_identity(config, errors);
  const auto& daemon = config.daemon;
  if (!daemon.pid_file.empty()) {
    if (auto checked = check_pid_file(daemon.pid_file, serving_uid(daemon)); !checked) {
      errors.error(daemon.position("pid_file"),
                   fmt::format("[daemon] pid_file cannot be written: {}", checked.error().message()));
    }
  }
  if (!daemon.log_file.empty()) {
    if (auto checked = check_log_file(daemon.log_file); !checked) {
      errors.error(daemon.position("log_file"),
                   fmt::format("[daemon] log_file cannot be opened: {}", checked.error().message()));
    }
  }
  if (daemon.access_log.starts_with('/')) {
    if (auto checked = check_log_file(daemon.access_log); !checked) {
      errors.error(daemon.position("access_log"),
                   fmt::format("[daemon] access_log cannot be opened: {}", checked.error().message()));
    }
  }
  return errors;
}

Runtime::Runtime(const Registry& registry, std::shared_ptr<spdlog::logger> log, ConfigSource source,
                 std::optional<LogLevel> level_override, std::vector<std::string> argv)
    : registry_(registry),
      log_(std::move(log)),
      source_(std::move(source)),
      level_override_(level_override),
      server_(io_, registry_, log_),
      notifier_(io_, [this] { return server_.status(); }),
      stop_signals_(io_, SIGINT, SIGTERM),
      hup_(io_, SIGHUP),
      usr1_(io_, SIGUSR1),
      usr2_(io_, SIGUSR2),
      argv_(std::move(argv)),
      own_path_(own_path()),
      upgrade_notification_(take_upgrade_notification()) {
  control_ = std::make_unique<ControlServer>(
      io_, log_, [this](const control::Request& request, const ControlServer::Peer& peer, ControlServer::Reply reply) {
        answer(request, peer, std::move(reply));
      });
}

Runtime::~Runtime() {
  if (loader_.joinable()) loader_.join();
}

void Runtime::apply_log_level(const Config& config) {
  set_log_level(*log_, level_override_.value_or(config.daemon.log_level));
}

int Runtime::run(const Config& config) {
  config_ = config;
  try {
    if (!config.daemon.log_file.empty()) {
      if (auto logging = log_to_file(*log_, config.daemon.log_file); !logging) {
        log_->error("{}", logging.error().message());
        return exit_runtime;
      }
    }
    // Opened before root is dropped, as the log file is.
    if (config.daemon.access_log_on()) {
      std::optional<uid_t> owner;
      if (geteuid() == 0 && serving_uid(config.daemon) != 0) owner = serving_uid(config.daemon);
      access_log_ = std::make_shared<AccessLog>(config.daemon, io_.get_executor(), log_, owner);
      server_.set_observer(access_log_);
    }
    const auto before = unix_socket_inodes(config);
    if (auto started = server_.start(config, inherited_listen_sockets()); !started) {
      log_->error("{}", started.error().message());
      return exit_runtime;
    }
    note_socket_files(config, before);
    bind_control_socket(config);
    // Under systemd the listening sockets also go to its file descriptor
    // store, which keeps them open across a restart; sockets it gave back
    // that no listener wants any more leave it.
    if (notifier_.enabled()) {
      server_.keep_socket_files();
      notifier_.forget_sockets(server_.unused_inherited());
      notifier_.store_sockets(server_.listening_sockets());
    }
    if (!config.daemon.pid_file.empty()) {
      auto written = PidFile::write(config.daemon.pid_file, serving_uid(config.daemon));
      if (!written) {
        log_->error("{}", written.error().message());
        return exit_runtime;
      }
      pid_file_ = std::move(*written);
    }
    // Every socket is bound (ports below 1024 included) before giving up
    // the rights that binding needed.
    if (auto dropped = drop_privileges(config.daemon, *log_); !dropped) {
      log_->error("{}", dropped.error().message());
      return exit_runtime;
    }
  } catch (const std::exception& e) {
    log_->error("{}", e.what());
    return exit_runtime;
  }
  for (const auto& listener : server_.listeners()) {
    log_->info("serving {} on {} ({})", escape_text(listener.name), escape_text(listener.address),
               escape_text(listener.handler));
  }
  wait_for_stop();
  wait_for_hup();
  wait_for_usr1();
  control_->start();
  wait_for_usr2();
  if (upgrade_notification_ >= 0) {
    log_->info("upgrade: this process (pid {}) serves every listener now", getpid());
    tell_ready(std::exchange(upgrade_notification_, -1));
    notifier_.ready(true);
  } else {
    notifier_.ready();
  }
  io_.run();
  control_->stop();
  // Every connection ended and was recorded: write what is buffered.
  if (access_log_) access_log_->stop();
  remove_files();
  // The destructor waits for the thread reading a configuration: say why
  // the exit may take long (a plugin whose load does not return).
  if (loading_) {
    log_->warn("exiting once the configuration being read for a reload is read (a plugin still loading?)");
  }
  return exit_ok;
}

void Runtime::note_socket_files(const Config& config, const std::map<std::string, ino_t>& before) {
  for (const auto& listener : config.listeners) {
    const std::string& path = listener.address.path;
    struct stat st {};
    if (listener.address.is_ip() || socket_files_.contains(path) || lstat(path.c_str(), &st) != 0) continue;
    // The same file as before the start: systemd's, passed in.
    if (const auto it = before.find(path); it != before.end() && it->second == st.st_ino) continue;
    socket_files_[path] = {st.st_dev, st.st_ino};
  }
}

// A listener removes its socket file when it stops, and the pid file goes
// on exit; once root was dropped, the directory may not let the serving
// user do either. Then the log says so.
void Runtime::remove_files() {
  if (pid_file_) {
    if (const int error = pid_file_->remove(); error != 0) {
      // The file written at start: a reload does not move it.
      log_->warn("{}", left_behind("pid file", pid_file_->path(), error, ""));
    }
  }
  // The control socket is this process's alone: an upgrade's new process
  // and the next start make their own.
  struct stat control {};
  if (!control_path_.empty() && lstat(control_path_.c_str(), &control) == 0 &&
      control.st_dev == control_file_.first && control.st_ino == control_file_.second &&
      ::unlink(control_path_.c_str()) != 0) {
    log_->warn("{}", left_behind("control socket", control_path_, errno, "; the next start replaces it"));
  }
  // The sockets live on: in the new process of an upgrade, or in systemd's
  // file descriptor store for the next start.
  if (handed_over_ || notifier_.enabled()) return;
  for (const auto& [path, id] : socket_files_) {
    struct stat st {};
    // Gone, or another file now: not porticod's to remove.
    if (lstat(path.c_str(), &st) != 0 || st.st_dev != id.first || st.st_ino != id.second) continue;
    if (::unlink(path.c_str()) != 0) {
      log_->warn("{}", left_behind("socket file", path, errno, "; the next start replaces it"));
    }
  }
}

void Runtime::wait_for_stop() {
  stop_signals_.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    if (stopping_) {
      log_->warn("received SIG{} again: exiting now, closing {} connection(s)", sigabbrev_np(signal),
                 server_.connection_count());
      io_.stop();
      return;
    }
    stop(fmt::format("received SIG{}", sigabbrev_np(signal)), false);
    wait_for_stop();
  });
}

void Runtime::stop(std::string_view why, bool handed_over) {
  stopping_ = true;
  handed_over_ = handed_over;
  // After an upgrade the new process is the service: systemd hears from it.
  if (!handed_over) notifier_.stopping();
  if (handed_over) server_.hand_over();
  log_->info("{}: no longer accepting; waiting up to {} for {} connection(s)", why,
             format_duration(config_.daemon.shutdown_timeout), server_.connection_count());
  // What waits for a reload is answered now: the file being read (a plugin
  // being loaded) may not come back before this process exits, and an
  // unanswered porticoctl would only see the control socket close.
  ReloadOutcome stopped;
  stopped.result = ReloadOutcome::Status::stopping;
  stopped.file = source_.name();
  for (auto& waiter : std::exchange(reload_waiters_, {})) waiter(stopped);
  if (running_reload_waiters_) {
    for (auto& waiter : std::exchange(*running_reload_waiters_, {})) waiter(stopped);
  }
  // An upgrade waiting for the reload answers "porticod is stopping".
  for (auto& waiting : std::exchange(after_reload_, {})) waiting();
  server_.shutdown(config_.daemon.shutdown_timeout, [this] {
    log_->info("porticod stopped");
    stop_signals_.cancel();
    hup_.cancel();
    usr1_.cancel();
    usr2_.cancel();
    // An answer given just before (an upgrade's outcome) is written first.
    control_->after_answers([this] { io_.stop(); });
  });
}

void Runtime::wait_for_usr2() {
  usr2_.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    upgrade("SIGUSR2", control::default_upgrade_timeout, nullptr);
    wait_for_usr2();
  });
}

void Runtime::upgrade(std::string trigger, Duration timeout, UpgradeDone done) {
  const auto tell = [&done](const UpgradeOutcome& outcome) {
    if (done) done(outcome);
  };
  using Outcome = UpgradeOutcome::Status;
  if (stopping_) {
    log_->warn("{}: porticod is stopping: no upgrade", trigger);
    return tell({Outcome::stopping, 0, "porticod is stopping: no upgrade"});
  }
  if (successor_ || upgrade_waiting_) {
    const pid_t pid = successor_ ? successor_->pid() : 0;
    const std::string message =
        successor_ ? fmt::format("an upgrade is in progress already (new process {}): this one is refused", pid)
                   : std::string("an upgrade is in progress already (waiting for a reload): this one is refused");
    log_->warn("{}: {}", trigger, message);
    return tell({Outcome::busy, pid, message});
  }
  // The new process gets the sockets as they are when it starts: after the
  // reload, not in the middle of one.
  if (reload_queued_ || reload_running_) {
    log_->info("{}: a reload is in progress: upgrading once it is applied", trigger);
    upgrade_waiting_ = true;
    after_reload_.push_back([this, trigger, timeout, done = std::move(done)]() mutable {
      upgrade_waiting_ = false;
      upgrade(std::move(trigger), timeout, std::move(done));
    });
    return;
  }
  auto started = Successor::start(io_, own_path_, argv_, server_.listening_sockets());
  if (!started) {
    const std::string message = fmt::format("upgrade failed: cannot start {}: {}; still serving",
                                            escape_text(own_path_), started.error().message());
    log_->error("{}", message);
    return tell({Outcome::failed, 0, message});
  }
  successor_ = std::move(*started);
  log_->info("{}: upgrading: started {} as pid {}; serving until it is ready", trigger, escape_text(own_path_),
             successor_->pid());
  successor_->wait(timeout, [this, done = std::move(done)](portico::Result<void> ready) {
    const pid_t pid = successor_->pid();
    if (!ready) {
      UpgradeOutcome outcome{Outcome::failed, pid,
                             fmt::format("upgrade failed: the new process (pid {}) {}; still serving", pid,
                                         ready.error().message()),
                             successor_->exit_status()};
      log_->error("{}", outcome.message);
      successor_.reset();
      if (done) done(outcome);
      return;
    }
    // Told before this process stops accepting, so the answer goes out
    // before the control socket closes (see stop()).
    if (done) done({Outcome::ok, pid, {}, -1, server_.connection_count()});
    stop(fmt::format("upgrade: the new process (pid {}) serves every listener", pid), true);
  });
}

void Runtime::wait_for_hup() {
  hup_.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    if (!stopping_) reload("received SIGHUP", nullptr);
    wait_for_hup();
  });
}

void Runtime::wait_for_usr1() {
  usr1_.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    if (auto reopened = reopen_log_file(*log_); !reopened) {
      log_->error("SIGUSR1: {}; still writing to the old file", reopened.error().message());
    } else {
      log_->info("SIGUSR1: log file reopened");
    }
    // The writer reopens the access log in turn, and logs the outcome.
    if (access_log_) access_log_->reopen();
    wait_for_usr1();
  });
}

// Reading, validating and binding happen before anything changes, so a
// broken config or a port that cannot be bound leaves the daemon serving
// exactly as before. Reading and validating take time in proportion to the
// file (and plugins run their own code), so they happen on a thread of
// their own while the loop goes on serving; binding and switching over
// happen back on the loop, in apply_reload().
void Runtime::reload(std::string trigger, ReloadDone done) {
  if (stopping_) {
    ReloadOutcome outcome;
    outcome.result = ReloadOutcome::Status::stopping;
    if (done) done(outcome);
    return;
  }
  // The new process of an upgrade loads the configuration itself; the
  // sockets it was given must stay as they are until it serves.
  if (successor_) {
    ReloadOutcome outcome;
    outcome.result = ReloadOutcome::Status::upgrading;
    outcome.message = fmt::format("an upgrade is in progress (new process {}): no reload; the new process loads "
                                  "the configuration as it starts (reload again if the upgrade fails)",
                                  successor_->pid());
    log_->warn("{}: {}", trigger, outcome.message);
    if (done) done(outcome);
    return;
  }
  if (done) reload_waiters_.push_back(std::move(done));
  log_->info("{}: reloading {}", trigger, escape_text(source_.name()));
  // One that has not begun reading will read the file as it is now: it
  // answers this request too.
  if (reload_queued_) return;
  reload_queued_ = true;
  auto waiters = std::make_shared<std::vector<ReloadDone>>();
  load(LoadJob{source_.path, true,
               [this, waiters] {
                 reload_queued_ = false;
                 reload_running_ = true;
                 *waiters = std::exchange(reload_waiters_, {});
                 running_reload_waiters_ = waiters;
                 notifier_.reloading();
               },
               [this, waiters](LoadResult loaded) {
                 running_reload_waiters_.reset();
                 apply_reload(std::move(loaded), std::move(*waiters));
                 reload_running_ = false;
                 if (reload_queued_) return;
                 for (auto& waiting : std::exchange(after_reload_, {})) waiting();
               }});
}

void Runtime::load(LoadJob job) {
  load_queue_.push_back(std::move(job));
  if (!loading_) start_next_load();
}

void Runtime::start_next_load() {
  if (load_queue_.empty()) return;
  LoadJob job = std::move(load_queue_.front());
  load_queue_.pop_front();
  if (loader_.joinable()) loader_.join();  // the previous one has posted its result: it is done
  loading_ = true;
  if (job.started) job.started();
  // Moved into the handler posted back: what `done` holds (a reply, its
  // timer) is then destroyed on the loop's thread, never on the loader's.
  loader_ = std::thread([this, path = std::move(job.path), plugins = job.load_plugins,
                         done = std::move(job.done)]() mutable {
    auto loaded = std::make_shared<LoadResult>(LoadResult{std::nullopt, Diagnostics(path)});
    try {
      *loaded = source_.load(path, registry_, plugins);
    } catch (const std::exception& e) {
      loaded->errors.error(SourcePos{}, fmt::format("cannot load the configuration: {}", e.what()));
    }
    // Posting from another thread takes the io_context's lock, which a
    // concurrency hint of 1 keeps.
    boost::asio::post(io_, [this, loaded, done = std::move(done)] {
      loading_ = false;
      done(std::move(*loaded));
      for (auto& waiting : std::exchange(after_load_, {})) waiting();
      start_next_load();
    });
  });
}

void Runtime::apply_reload(LoadResult loaded, std::vector<ReloadDone> waiters) {
  ReloadOutcome outcome;
  outcome.file = source_.name();
  const auto answer = [&] {
    for (const auto& waiter : waiters) waiter(outcome);
  };
  if (stopping_) {
    outcome.result = ReloadOutcome::Status::stopping;
    answer();
    return;
  }
  for (const auto& warning : loaded.errors.warnings()) log_->warn("{}", warning.to_string());
  if (!loaded.config) {
    for (const auto& error : loaded.errors.all()) log_->error("{}", error.to_string());
    if (loaded.errors.omitted() > 0) log_->error("{}", loaded.errors.omitted_line());
    log_->error("reload failed: {} error(s); still serving the previous configuration", loaded.errors.size());
    ++reloads_failed_;
    server_.record_reload(false);
    notifier_.ready();
    outcome.result = ReloadOutcome::Status::invalid;
    outcome.errors = std::move(loaded.errors);
    answer();
    return;
  }
  const Config& next = *loaded.config;
  const auto& was = config_.daemon;
  const auto& now = next.daemon;
  const std::pair<const char*, bool> start_only[] = {{"user", was.user != now.user},
                                                     {"group", was.group != now.group},
                                                     {"pid_file", was.pid_file != now.pid_file},
                                                     {"log_file", was.log_file != now.log_file},
                                                     {"control_socket", was.control_socket != now.control_socket},
                                                     {"access_log", was.access_log != now.access_log},
                                                     {"access_log_format",
                                                      was.access_log_format != now.access_log_format}};
  for (const auto& [key, changed] : start_only) {
    if (!changed) continue;
    log_->warn("reload: [daemon] {} applies only at start; restart porticod to change it", key);
    outcome.notes.push_back(fmt::format("[daemon] {} applies only at start; restart porticod to change it", key));
  }
  outcome.diff = diff_configs(config_, next, registry_);
  const auto before = unix_socket_inodes(next);
  if (auto summary = server_.reload(next); summary) {
    note_socket_files(next, before);
    config_ = next;
    apply_log_level(config_);
    notifier_.store_sockets(server_.listening_sockets());
    log_->info("reload complete: {}", *summary);
    ++reloads_ok_;
    server_.record_reload(true);
    loaded_at_ = std::chrono::system_clock::now();
    outcome.message = *summary;
  } else {
    log_->error("reload failed: {}; still serving the previous configuration", summary.error().message());
    ++reloads_failed_;
    server_.record_reload(false);
    outcome.result = ReloadOutcome::Status::failed;
    outcome.message = summary.error().message();
    outcome.diff = {};
    outcome.notes.clear();
  }
  notifier_.ready();
  answer();
}

}  // namespace portico
