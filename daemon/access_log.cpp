#include "daemon/access_log.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <systemd/sd-journal.h>

#include <portico/metrics.hpp>
#include <portico/text.hpp>

#include "daemon/access_log_format.hpp"

namespace portico {

namespace {

using namespace std::chrono_literals;

// Flushed at least this often (the contract says once a second), and at
// once when this much is waiting.
constexpr auto flush_interval = 250ms;
constexpr std::size_t flush_threshold = 64 * 1024;
// Beyond this much waiting, lines are dropped: some 30 000 lines, a second
// of the fastest greeting load this daemon serves on one core.
constexpr std::size_t max_pending = 8 * 1024 * 1024;
constexpr auto report_interval = 5s;
// stderr may be a pipe shared with the daemon's own log: writes of at most
// PIPE_BUF bytes, cut at line ends, are not interleaved with its lines.
constexpr std::size_t pipe_atomic = 4096;

int open_file(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
  if (fd < 0) error = fmt::format("cannot open access log {}: {}", escape_text(path), std::strerror(errno));
  return fd;
}

AccessLog::Target target_of(const std::string& access_log) {
  if (access_log == "stderr") return AccessLog::Target::stderr_stream;
  if (access_log == "journal") return AccessLog::Target::journal;
  return AccessLog::Target::file;
}

}  // namespace

AccessLog::AccessLog(const DaemonConfig& config, boost::asio::any_io_executor executor,
                     std::shared_ptr<spdlog::logger> log, std::optional<uid_t> owner)
    : target_(target_of(config.access_log)),
      format_(config.access_log_format),
      path_(config.access_log),
      executor_(std::move(executor)),
      log_(std::move(log)) {
  if (target_ == Target::file) {
    std::string error;
    fd_ = open_file(path_, error);
    if (fd_ < 0) throw std::runtime_error(error);
    if (owner && ::fchown(fd_, *owner, static_cast<gid_t>(-1)) != 0) {
      log_->warn("access log {}: cannot give it to uid {}: {}; SIGUSR1 may not be able to reopen it",
                 escape_text(path_), *owner, std::strerror(errno));
    }
  } else if (target_ == Target::stderr_stream) {
    fd_ = STDERR_FILENO;
  }
  thread_ = std::thread([this] { writer(); });
}

AccessLog::~AccessLog() {
  stop();
  if (target_ == Target::file && fd_ >= 0) ::close(fd_);
}

void AccessLog::connection_ended(const ConnectionRecord& record) {
  scratch_.clear();
  const auto now = std::chrono::system_clock::now();
  if (target_ == Target::journal) {
    journal_connection(scratch_, format_, record, now);
  } else {
    format_connection(scratch_, format_, record, now);
  }
  append(scratch_);
}

void AccessLog::connection_refused(const RefusalRecord& record) {
  scratch_.clear();
  const auto now = std::chrono::system_clock::now();
  if (target_ == Target::journal) {
    journal_refusal(scratch_, format_, record, now);
  } else {
    format_refusal(scratch_, format_, record, now);
  }
  append(scratch_);
}

void AccessLog::append(const std::string& entry) {
  std::unique_lock lock(mutex_);
  if (stopped_ || pending_.size() + entry.size() > max_pending) {
    lock.unlock();
    note_drop();
    return;
  }
  const bool wake = pending_.size() < flush_threshold && pending_.size() + entry.size() >= flush_threshold;
  pending_ += entry;
  lock.unlock();
  if (wake) wake_.notify_one();
}

void AccessLog::note_drop() {
  ++dropped_;
  ++dropped_unreported_;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_drop_report_ < report_interval) return;
  last_drop_report_ = now;
  log_->warn("access log: {} line(s) dropped since the last report: the writer is {} MiB behind (a slow disk?)",
             std::exchange(dropped_unreported_, 0), max_pending >> 20);
}

void AccessLog::write_metrics(MetricsWriter& out) const {
  out.counter("portico_access_log_dropped_total", "Access log lines dropped because the writer was behind", {},
              static_cast<double>(dropped_));
  out.counter("portico_access_log_write_errors_total", "Access log writes that failed", {},
              static_cast<double>(write_errors_.load(std::memory_order_relaxed)));
}

void AccessLog::reopen() {
  if (target_ != Target::file) return;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    reopen_at_ = pending_.size();
  }
  wake_.notify_one();
}

void AccessLog::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  // The server's thread no longer runs handlers: log what is left here.
  log_told();
  if (dropped_unreported_ > 0) {
    log_->warn("access log: {} line(s) dropped since the last report", std::exchange(dropped_unreported_, 0));
  }
}

void AccessLog::writer() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, flush_interval,
                   [this] { return stopping_ || reopen_at_ || pending_.size() >= flush_threshold; });
    std::swap(pending_, writing_);
    const auto reopen_at = std::exchange(reopen_at_, std::nullopt);
    const bool last = stopping_;
    lock.unlock();
    write_batch(writing_, reopen_at);
    writing_.clear();  // keeps its capacity for the next swap
    lock.lock();
    if (last && pending_.empty()) return;
  }
}

void AccessLog::write_batch(const std::string& batch, std::optional<std::size_t> reopen_at) {
  const std::string_view all(batch);
  const std::size_t cut = reopen_at ? *reopen_at : all.size();
  if (target_ == Target::journal) {
    send_journal(all);
    return;
  }
  write_bytes(all.substr(0, cut));
  if (reopen_at) {
    reopen_now();
    write_bytes(all.substr(cut));
  }
}

void AccessLog::write_bytes(std::string_view bytes) {
  while (!bytes.empty()) {
    std::size_t size = bytes.size();
    if (target_ == Target::stderr_stream && size > pipe_atomic) {
      const auto nl = bytes.rfind('\n', pipe_atomic - 1);
      size = nl == std::string_view::npos ? pipe_atomic : nl + 1;
    }
    const ssize_t n = ::write(fd_, bytes.data(), size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      const auto now = std::chrono::steady_clock::now();
      if (now - last_error_report_ >= report_interval) {
        last_error_report_ = now;
        tell(spdlog::level::err,
             fmt::format("access log: cannot write to {}: {}; {} byte(s) lost",
                         target_ == Target::file ? escape_text(path_) : std::string("stderr"),
                         n < 0 ? std::strerror(errno) : "nothing written", bytes.size()));
      }
      return;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void AccessLog::send_journal(std::string_view entries) {
  std::vector<iovec> fields;
  while (entries.size() >= sizeof(std::uint32_t)) {
    std::uint32_t size = 0;
    std::memcpy(&size, entries.data(), sizeof size);
    entries.remove_prefix(sizeof size);
    std::string_view entry = entries.substr(0, size);
    entries.remove_prefix(entry.size());
    fields.clear();
    while (entry.size() >= sizeof(std::uint32_t)) {
      std::uint32_t length = 0;
      std::memcpy(&length, entry.data(), sizeof length);
      entry.remove_prefix(sizeof length);
      const std::string_view field = entry.substr(0, length);
      entry.remove_prefix(field.size());
      fields.push_back(iovec{const_cast<char*>(field.data()), field.size()});
    }
    const int rc = sd_journal_sendv(fields.data(), static_cast<int>(fields.size()));
    if (rc < 0) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      const auto now = std::chrono::steady_clock::now();
      if (now - last_error_report_ >= report_interval) {
        last_error_report_ = now;
        tell(spdlog::level::err, fmt::format("access log: cannot send to the journal: {}", std::strerror(-rc)));
      }
    }
  }
}

void AccessLog::reopen_now() {
  std::string error;
  const int fd = open_file(path_, error);
  if (fd < 0) {
    tell(spdlog::level::err, fmt::format("SIGUSR1: {}; still writing to the old file", error));
    return;
  }
  ::close(std::exchange(fd_, fd));
  tell(spdlog::level::info, fmt::format("SIGUSR1: access log {} reopened", escape_text(path_)));
}

void AccessLog::tell(spdlog::level::level_enum level, std::string message) {
  {
    std::lock_guard lock(mutex_);
    told_.emplace_back(level, std::move(message));
  }
  boost::asio::post(executor_, [self = weak_from_this()] {
    if (const auto log = self.lock()) log->log_told();
  });
}

void AccessLog::log_told() {
  std::vector<std::pair<spdlog::level::level_enum, std::string>> messages;
  {
    std::lock_guard lock(mutex_);
    messages.swap(told_);
  }
  for (const auto& [level, message] : messages) log_->log(level, "{}", message);
}

}  // namespace portico
