#pragma once
// porticod's logging: one logger writing to stderr (with syslog priority
// prefixes "<6>" instead of timestamps when stderr is the systemd journal),
// or to a log file that SIGUSR1 reopens for logrotate.

#include <memory>
#include <string>

#include <spdlog/logger.h>

#include <portico/config.hpp>

namespace portico {

std::shared_ptr<spdlog::logger> make_daemon_logger();
void set_log_level(spdlog::logger& logger, LogLevel level);

// Why `path` cannot be opened as the log file (its directory is missing,
// it is a directory, it is not writable), or an empty string.
std::string check_log_file(const std::string& path);

// Sends the logger's output to `path` (appending) instead of stderr. Throws
// std::runtime_error when the file cannot be opened.
void log_to_file(spdlog::logger& logger, const std::string& path);
// Reopens the log file under its name, after logrotate moved it. Returns an
// error message, or an empty string on success (or when logging to stderr).
std::string reopen_log_file(spdlog::logger& logger);

}  // namespace portico
