#include "daemon/log_setup.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

#include <sys/stat.h>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace portico {

namespace {

// JOURNAL_STREAM holds "DEVICE:INODE" of the stream systemd connected to
// stderr; when it matches, the journal adds its own timestamps and reads
// the priority from a "<N>" prefix.
bool stderr_is_journal() {
  const char* value = std::getenv("JOURNAL_STREAM");
  if (value == nullptr) return false;
  struct stat st {};
  if (fstat(2, &st) != 0) return false;
  return std::string(value) == std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

class SyslogPriority final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    // trace and debug -> 7 (debug), info -> 6, warn -> 4, error -> 3, critical -> 2.
    static constexpr char priorities[] = {'7', '7', '6', '4', '3', '2', '6'};
    dest.push_back('<');
    dest.push_back(priorities[static_cast<int>(msg.level)]);
    dest.push_back('>');
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SyslogPriority>(); }
};

}  // namespace

std::shared_ptr<spdlog::logger> make_daemon_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("portico", sink);
  if (stderr_is_journal()) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SyslogPriority>('*').set_pattern("%*%v");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
  }
  // A daemon's log must survive a crash right after an error line.
  logger->flush_on(spdlog::level::trace);
  return logger;
}

void set_log_level(spdlog::logger& logger, LogLevel level) {
  logger.set_level(static_cast<spdlog::level::level_enum>(static_cast<int>(level)));
}

}  // namespace portico
