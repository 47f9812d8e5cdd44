#pragma once
// A program started for one connection, and its end: spawning it with the
// connection as its stdin and stdout, signalling it, and reaping it without
// blocking the io_context.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <portico/result.hpp>

namespace portico::handlers {

// Who the child runs as, resolved once at load time so that the child
// itself only makes system calls (no NSS lookups between fork and exec).
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
  bool change_user = false;   // false: only the group changes
};

// What to run: an absolute path and its argv, never through a shell.
struct Command {
  std::string path;
  std::vector<std::string> argv;
  std::optional<Credentials> credentials;
};

// How a child ended.
struct ExitStatus {
  int code = 0;    // exit status, when signal == 0
  int signal = 0;  // the signal that killed it, or 0

  // "exited with status 0", "killed by SIGTERM".
  std::string to_string() const;
  // Short, for the access log and the metrics: the exit status ("0" to
  // "255"), the signal ("SIGTERM", "SIG40" for one without a name), or
  // "unknown". At most 256 + 64 + 1 values.
  std::string label() const;
};

// A running child. Not copyable; destroying one that was not reaped kills
// it (SIGKILL) so that no child outlives its connection unobserved.
class ChildProcess {
 public:
  // Starts `command` with `socket` duplicated to stdin and stdout and
  // `stderr_fd` to stderr (-1: /dev/null), `environment` ("K=V") as its
  // whole environment, default signal dispositions and mask, in a process
  // group of its own, and no other descriptor open. Throws
  // std::system_error when the process cannot be created; a failure to
  // execute shows as a message on its stderr and exit status 127.
  ChildProcess(const boost::asio::any_io_executor& executor, const Command& command,
               const std::vector<std::string>& environment, int socket, int stderr_fd);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool reaped() const { return reaped_; }

  // Sends `sig` to the child's process group (the child and what it
  // started); does nothing once the child was reaped.
  void signal(int sig) const;

  // Waits until the child exits and reaps it. Returns nullopt when the wait
  // was cancelled first (per-operation cancellation, e.g. by operator||).
  boost::asio::awaitable<std::optional<ExitStatus>> wait();

 private:
  std::optional<ExitStatus> try_reap();

  pid_t pid_ = -1;
  bool reaped_ = false;
  // Readable when the child exits (pidfd_open, Linux 5.3+); without it,
  // the child is polled with `poll_timer_`.
  std::optional<boost::asio::posix::stream_descriptor> pidfd_;
  boost::asio::steady_timer poll_timer_;
};

// The program `name` names: itself when it contains a '/', else the first
// executable regular file called so in `search_path` (a PATH value).
// The error says why there is none.
Result<std::string> find_executable(const std::string& name, const std::string& search_path);

}  // namespace portico::handlers
