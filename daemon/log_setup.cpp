#include "daemon/log_setup.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/details/null_mutex.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <portico/text.hpp>

namespace portico {

namespace {

// %~ is the message with its control characters escaped (EscapedMessage).
constexpr const char* plain_pattern = "%Y-%m-%d %H:%M:%S.%e %l %~";

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

// The message, with every control character escaped (escape_text's
// scheme): values from the config, a client or a program may hold a newline
// that would forge a log line, or an escape sequence that a terminal would
// obey. Messages should escape their values already; this is the net that
// keeps one message on one line whatever they do.
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    // Most messages are plain ASCII: no copy for them.
    const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u >= 0x20 && u < 0x7f;
    });
    if (plain) {
      dest.append(text.data(), text.data() + text.size());
    } else {
      const std::string escaped = escape_controls(text);
      dest.append(escaped.data(), escaped.data() + escaped.size());
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<EscapedMessage>(); }
};

std::unique_ptr<spdlog::formatter> make_formatter(const std::string& pattern) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<EscapedMessage>('~').set_pattern(pattern);
  return formatter;
}

// A file sink that can reopen its file by name. The daemon logs from one
// thread, so no locking.
class ReopenableFileSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit ReopenableFileSink(std::string path) : path_(std::move(path)) {}
  ~ReopenableFileSink() override {
    if (file_) std::fclose(file_);
  }

  Result<void> reopen() {
    std::FILE* next = std::fopen(path_.c_str(), "a");
    if (next == nullptr) return fail("cannot open log file {}: {}", escape_text(path_), std::strerror(errno));
    if (file_) std::fclose(file_);
    file_ = next;
    return {};
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), file_);
  }
  void flush_() override { std::fflush(file_); }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace

Result<void> check_log_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return fail("{} is a directory", escape_text(path));
    if (access(path.c_str(), W_OK) != 0) return fail("{}: {}", escape_text(path), std::strerror(errno));
    return {};
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  if (stat(dir.c_str(), &st) != 0) return fail("directory {}: {}", escape_text(dir), std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return fail("{} is not a directory", escape_text(dir));
  if (access(dir.c_str(), W_OK) != 0) return fail("directory {}: {}", escape_text(dir), std::strerror(errno));
  return {};
}

std::shared_ptr<spdlog::logger> make_daemon_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("portico", sink);
  if (stderr_is_journal()) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SyslogPriority>('*').add_flag<EscapedMessage>('~').set_pattern("%*%~");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_formatter(make_formatter(plain_pattern));
  }
  // A daemon's log must survive a crash right after an error line.
  logger->flush_on(spdlog::level::trace);
  return logger;
}

void set_log_level(spdlog::logger& logger, LogLevel level) {
  logger.set_level(static_cast<spdlog::level::level_enum>(static_cast<int>(level)));
}

Result<void> log_to_file(spdlog::logger& logger, const std::string& path) {
  auto sink = std::make_shared<ReopenableFileSink>(path);
  if (auto opened = sink->reopen(); !opened) return opened;
  sink->set_formatter(make_formatter(plain_pattern));
  logger.sinks().assign(1, std::move(sink));
  return {};
}

Result<void> reopen_log_file(spdlog::logger& logger) {
  for (auto& sink : logger.sinks()) {
    if (auto* file = dynamic_cast<ReopenableFileSink*>(sink.get())) return file->reopen();
  }
  return {};
}

}  // namespace portico
