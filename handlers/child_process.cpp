#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include <portico/io.hpp>
#include <portico/text.hpp>

namespace portico::handlers {

namespace {

namespace asio = boost::asio;

// Without a pidfd, how often an unfinished child is checked.
constexpr auto poll_interval = std::chrono::milliseconds(20);

// Everything the child needs, prepared before vfork(): between vfork and
// exec the child makes only async-signal-safe system calls and writes no
// memory but its own stack, because it runs in the daemon's memory, which
// other threads (Asio's resolver) may be using, with their locks held.
struct ChildPlan {
  const char* path = nullptr;
  std::vector<char*> argv;
  std::vector<char*> envp;
  int socket = -1;
  int stderr_fd = -1;
  const Credentials* credentials = nullptr;
  int fd_limit = 1024;  // how far to close descriptors without close_range(2)
};

void write_text(const char* text) {
  // Nothing to do about a failed write to stderr.
  [[maybe_unused]] const ssize_t n = ::write(2, text, std::strlen(text));
}

// The daemon logs the child's stderr (or, before it is in place, its own).
[[noreturn]] void fail_in_child(const ChildPlan& plan, const char* step) {
  const char* reason = strerrordesc_np(errno);
  write_text("porticod: ");
  write_text(step);
  write_text(" ");
  write_text(plan.path);
  write_text(": ");
  write_text(reason != nullptr ? reason : "unknown error");
  write_text("\n");
  _exit(127);
}

// Not inlined: under vfork() the child must not write into the frame of
// the daemon's function that called it.
[[noreturn, gnu::noinline]] void run_child(const ChildPlan& plan) {
  // The daemon ignores SIGPIPE and may block or catch others; a program
  // expects the defaults.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &default_action, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Its own process group, so that a timeout's signal reaches what it
  // started too.
  setpgid(0, 0);

  // Both sources move above 2 first: a daemon started with 0-2 closed may
  // have them there, and one dup2 would then overwrite the other.
  const int null_fd = plan.stderr_fd >= 0 ? -1 : ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  const int socket = fcntl(plan.socket, F_DUPFD_CLOEXEC, 3);
  const int err = fcntl(plan.stderr_fd >= 0 ? plan.stderr_fd : null_fd, F_DUPFD_CLOEXEC, 3);
  if (socket < 0 || err < 0) fail_in_child(plan, "cannot set up descriptors for");
  if (dup2(socket, 0) < 0 || dup2(socket, 1) < 0 || dup2(err, 2) < 0) {
    fail_in_child(plan, "cannot set up descriptors for");
  }
  // The daemon's socket is non-blocking, a flag the duplicates share; a
  // program expects blocking reads and writes. (The daemon closes its own
  // copy without using it again.)
  const int flags = fcntl(0, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) != 0) fcntl(0, F_SETFL, flags & ~O_NONBLOCK);
  // Nothing of the daemon's (listening sockets, other clients, the epoll
  // descriptor, log files) may reach the program.
  if (close_range(3, ~0U, 0) != 0) {
    for (int fd = 3; fd < plan.fd_limit; ++fd) ::close(fd);
  }

  // The raw system calls: glibc's wrappers would try to change the
  // credentials of every thread of the daemon's (which the child shares
  // memory, but not threads, with). The kernel changes the calling thread's,
  // the child's only one.
  if (plan.credentials != nullptr) {
    const Credentials& c = *plan.credentials;
    if (::syscall(SYS_setgroups, c.groups.size(), c.groups.data()) != 0) {
      fail_in_child(plan, "cannot set the groups to run");
    }
    if (::syscall(SYS_setgid, c.gid) != 0) fail_in_child(plan, "cannot set the group to run");
    if (c.change_user && ::syscall(SYS_setuid, c.uid) != 0) fail_in_child(plan, "cannot set the user to run");
  }
  execve(plan.path, plan.argv.data(), plan.envp.data());
  fail_in_child(plan, "cannot execute");
}

std::vector<char*> pointers(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

int fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 65536;
  return static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 1 << 20));
}

}  // namespace

std::string ExitStatus::to_string() const {
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    return name != nullptr ? fmt::format("killed by SIG{}", name) : fmt::format("killed by signal {}", signal);
  }
  if (code < 0) return "ended (status unknown)";
  return fmt::format("exited with status {}", code);
}

std::string ExitStatus::label() const {
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    return name != nullptr ? fmt::format("SIG{}", name) : fmt::format("SIG{}", signal);
  }
  if (code < 0) return "unknown";
  return std::to_string(code);
}

ChildProcess::ChildProcess(const asio::any_io_executor& executor, const Command& command,
                           const std::vector<std::string>& environment, int socket, int stderr_fd)
    : poll_timer_(executor) {
  ChildPlan plan;
  plan.path = command.path.c_str();
  plan.argv = pointers(command.argv);
  plan.envp = pointers(environment);
  plan.socket = socket;
  plan.stderr_fd = stderr_fd;
  plan.credentials = command.credentials ? &*command.credentials : nullptr;
  plan.fd_limit = fd_limit();

  // vfork: the child borrows the daemon's memory until it execs, so no page
  // table is copied and the daemon takes no copy-on-write faults afterwards
  // (spawning /bin/true per connection on 2 cores: 360 connections/s, against
  // 170 with fork()).
  // run_child() only makes system calls on what `plan` prepared. Every signal
  // stays blocked meanwhile, so that no handler of the daemon's runs in the
  // child before it has reset them.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = vfork();
  if (pid == 0) run_child(plan);
  const int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) throw std::system_error(fork_errno, std::generic_category(), "vfork");
  // The child has made its process group, and exec'd or failed, by now.
  pid_ = pid;
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd >= 0) {
    // pidfd_open sets close-on-exec itself.
    pidfd_.emplace(executor, pidfd);
  }
}

ChildProcess::~ChildProcess() {
  if (reaped_ || pid_ <= 0) return;
  // Only when a connection ends abnormally (an exception, the io_context
  // torn down). Reaping here could block; the zombie, if any, goes when
  // the daemon exits.
  signal(SIGKILL);
  ::waitpid(pid_, nullptr, WNOHANG);
}

void ChildProcess::signal(int sig) const {
  if (reaped_ || pid_ <= 0) return;
  // The group is gone when every member left it or the child changed its
  // own; the child itself may still be there.
  if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
}

std::optional<ExitStatus> ChildProcess::try_reap() {
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0 || (r < 0 && errno == EINTR)) return std::nullopt;
  reaped_ = true;
  pidfd_.reset();
  if (r < 0) return ExitStatus{.code = -1};  // reaped elsewhere (SIGCHLD ignored)
  if (WIFSIGNALED(status)) return ExitStatus{.signal = WTERMSIG(status)};
  return ExitStatus{.code = WEXITSTATUS(status)};
}

asio::awaitable<std::optional<ExitStatus>> ChildProcess::wait() {
  for (;;) {
    if (auto status = try_reap()) co_return status;
    if (pidfd_) {
      auto [ec] = co_await pidfd_->async_wait(asio::posix::stream_descriptor::wait_read, use_tuple);
      if (ec == asio::error::operation_aborted) co_return std::nullopt;
      // Anything else is the pidfd's own failure: poll from now on.
      if (ec) pidfd_.reset();
    } else {
      poll_timer_.expires_after(poll_interval);
      auto [ec] = co_await poll_timer_.async_wait(use_tuple);
      if (ec) co_return std::nullopt;
    }
  }
}

Result<std::string> find_executable(const std::string& name, const std::string& search_path) {
  const auto problem = [](const std::string& path) -> std::string {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::strerror(errno);
    if (!S_ISREG(st.st_mode)) return "not a regular file";
    if (::access(path.c_str(), X_OK) != 0) return "not executable";
    return {};
  };
  if (name.empty()) return fail("the command's program name is empty");
  if (name.find('/') != std::string::npos) {
    if (name.front() != '/') {
      return fail("command {} must be an absolute path, or a bare name looked up in PATH", quote_text(name));
    }
    if (auto why = problem(name); !why.empty()) return fail("command {} cannot be run: {}", quote_text(name), why);
    return name;
  }
  for (std::size_t start = 0; start <= search_path.size();) {
    auto end = search_path.find(':', start);
    if (end == std::string::npos) end = search_path.size();
    const std::string dir = search_path.substr(start, end - start);
    start = end + 1;
    // An empty entry would mean the current directory: never for a daemon.
    if (dir.empty() || dir.front() != '/') continue;
    const std::string candidate = dir + "/" + name;
    if (problem(candidate).empty()) return candidate;
  }
  return fail("command {} is not an executable file in PATH ({})", quote_text(name), escape_text(search_path));
}

}  // namespace portico::handlers
