#pragma once
// porticod's access log: the server's ConnectionObserver, writing one line
// per ended or refused connection ([daemon] access_log) to a file, to
// stderr or to the systemd journal.
//
// The server's thread only formats a line and appends it to a buffer in
// memory; a writer thread of its own takes the buffer and writes it, at
// least every 250 ms and at once when 64 KiB are waiting, so a slow disk
// (or a journald that is behind) never stops the event loop. When 8 MiB
// are waiting the writer is too far behind: further lines are dropped and
// counted (logged at most every 5 s, and in the metrics) until it catches
// up. stop() writes everything still buffered: nothing is lost on a clean
// stop.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <spdlog/logger.h>

#include <portico/config.hpp>
#include <portico/events.hpp>

namespace portico {

class AccessLog final : public ConnectionObserver, public std::enable_shared_from_this<AccessLog> {
 public:
  // For [daemon] access_log (not "off"); held by a shared_ptr. Opens the file (appending,
  // created with mode 0640) and starts the writer; throws
  // std::runtime_error when the file cannot be opened. What the writer has
  // to say (a failed write, a reopen) is logged through `log` on
  // `executor`, the server's thread. `owner`: the user porticod will serve
  // as, when it opens the file as root before dropping root; the file is
  // given to it, so that SIGUSR1 can reopen it later.
  AccessLog(const DaemonConfig& config, boost::asio::any_io_executor executor, std::shared_ptr<spdlog::logger> log,
            std::optional<uid_t> owner = std::nullopt);
  ~AccessLog() override;
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void connection_ended(const ConnectionRecord& record) override;
  void connection_refused(const RefusalRecord& record) override;
  void write_metrics(MetricsWriter& out) const override;

  // Reopens the file under its name, after logrotate moved it (SIGUSR1):
  // lines of connections that ended before the call go to the old file,
  // later ones to the new. The writer logs the outcome. Nothing to do for
  // stderr and the journal.
  void reopen();
  // Writes what is buffered and stops the writer. Called by the server's
  // thread once the server stopped (later records are dropped).
  void stop();

  enum class Target : std::uint8_t { file, stderr_stream, journal };

 private:
  void append(const std::string& entry);
  void note_drop();
  void writer();
  void write_batch(const std::string& batch, std::optional<std::size_t> reopen_at);
  void write_bytes(std::string_view bytes);
  void send_journal(std::string_view entries);
  void reopen_now();
  // From the writer thread: a message for the log, logged on the server's
  // thread (the log's file sink is not thread-safe).
  void tell(spdlog::level::level_enum level, std::string message);
  void log_told();

  Target target_;
  AccessLogFormat format_;
  std::string path_;
  boost::asio::any_io_executor executor_;
  std::shared_ptr<spdlog::logger> log_;
  std::string scratch_;  // the server's thread's line being formatted

  std::mutex mutex_;
  std::condition_variable wake_;
  std::string pending_;                   // appended by the server's thread
  std::optional<std::size_t> reopen_at_;  // where in pending_ a reopen was asked
  std::vector<std::pair<spdlog::level::level_enum, std::string>> told_;
  bool stopping_ = false;
  bool stopped_ = false;

  // The server's thread's own.
  std::uint64_t dropped_ = 0;
  std::uint64_t dropped_unreported_ = 0;
  std::chrono::steady_clock::time_point last_drop_report_{};

  // The writer's own, but for write_errors_, which metrics read.
  int fd_ = -1;
  std::string writing_;
  std::atomic<std::uint64_t> write_errors_{0};
  std::chrono::steady_clock::time_point last_error_report_{};
  std::thread thread_;
};

}  // namespace portico
