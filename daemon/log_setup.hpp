#pragma once
// porticod's logging: one logger writing to stderr (with syslog priority
// prefixes "<6>" instead of timestamps when stderr is the systemd journal),
// or to a log file that SIGUSR1 reopens for logrotate.

#include <memory>
#include <string>

#include <spdlog/logger.h>

#include <portico/config.hpp>
#include <portico/result.hpp>

namespace portico {

std::shared_ptr<spdlog::logger> make_daemon_logger();
void set_log_level(spdlog::logger& logger, LogLevel level);

// Whether `path` can be opened as the log file; the error says why not (its
// directory is missing, it is a directory, it is not writable).
Result<void> check_log_file(const std::string& path);

// Sends the logger's output to `path` (appending) instead of stderr; on an
// error the logger is left as it was.
Result<void> log_to_file(spdlog::logger& logger, const std::string& path);
// Reopens the log file under its name, after logrotate moved it (nothing to
// do when logging to stderr); on an error the old file stays in use.
Result<void> reopen_log_file(spdlog::logger& logger);

}  // namespace portico
