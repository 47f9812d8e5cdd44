#pragma once
// porticod's logging: one logger writing to stderr, with syslog priority
// prefixes ("<6>") instead of timestamps when stderr is the systemd journal.

#include <memory>

#include <spdlog/logger.h>

#include <portico/config.hpp>

namespace portico {

std::shared_ptr<spdlog::logger> make_daemon_logger();
void set_log_level(spdlog::logger& logger, LogLevel level);

}  // namespace portico
