#include "daemon/upgrade.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include <portico/duration.hpp>
#include <portico/io.hpp>

extern char** environ;

namespace portico {

namespace asio = boost::asio;

namespace {

constexpr const char* notification_variable = "PORTICO_UPGRADE_FD";

bool is_handover_variable(std::string_view entry) {
  for (const char* name : {"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=", "PORTICO_UPGRADE_FD="}) {
    if (entry.starts_with(name)) return true;
  }
  return false;
}

// Writes `value` in decimal at `out`, which has room for it; async-signal-
// safe, for the child between fork and exec.
void write_decimal(char* out, long value) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  while (n > 0) *out++ = digits[--n];
  *out = '\0';
}

std::string describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by SIG{}", sigabbrev_np(WTERMSIG(status)));
  return "ended";
}

}  // namespace

std::string own_path() {
  std::array<char, PATH_MAX> path{};
  const ssize_t n = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
  return n > 0 ? std::string(path.data(), static_cast<std::size_t>(n)) : std::string();
}

int take_upgrade_notification() {
  const char* value = std::getenv(notification_variable);
  if (value == nullptr) return -1;
  char* end = nullptr;
  const long fd = std::strtol(value, &end, 10);
  ::unsetenv(notification_variable);
  if (end == value || *end != '\0' || fd < 3 || fd > INT_MAX) return -1;
  ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return static_cast<int>(fd);
}

void tell_ready(int fd) {
  if (fd < 0) return;
  // The old process waits for these bytes; a pipe of its own takes them at
  // once.
  [[maybe_unused]] const ssize_t n = ::write(fd, "READY\n", 6);
  ::close(fd);
}

Successor::Successor(asio::io_context& io, pid_t pid, int ready_fd)
    : pid_(pid), ready_(io, ready_fd), timer_(io) {}

Successor::~Successor() {
  // Whatever happens to it from now on, the new process is not ours to
  // wait for once it took over; if it did not, it was reaped already.
}

Result<std::unique_ptr<Successor>> Successor::start(asio::io_context& io, const std::string& path,
                                                    const std::vector<std::string>& argv,
                                                    const std::vector<Server::ListeningSocket>& sockets) {
  if (path.empty()) return fail("cannot tell which binary this is (/proc/self/exe)");
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return fail("pipe: {}", std::strerror(errno));

  // Everything the child needs is made here: between fork and exec it may
  // only make system calls (other threads may hold locks in our memory).
  const int count = static_cast<int>(sockets.size());
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!is_handover_variable(*e)) environment.emplace_back(*e);
  }
  std::string names;
  for (const auto& socket : sockets) names += (names.empty() ? "" : ":") + socket.name;
  environment.push_back(fmt::format("LISTEN_FDS={}", count));
  environment.push_back("LISTEN_FDNAMES=" + names);
  environment.push_back(fmt::format("{}={}", notification_variable, 3 + count));
  // Filled in by the child with its own pid.
  environment.push_back("LISTEN_PID=" + std::string(24, '\0'));
  std::vector<char*> envp;
  for (auto& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  char* listen_pid = environment.back().data() + std::strlen("LISTEN_PID=");
  std::vector<std::string> args = argv;
  std::vector<char*> arg_pointers;
  for (auto& arg : args) arg_pointers.push_back(arg.data());
  arg_pointers.push_back(nullptr);
  std::vector<int> sources;
  for (const auto& socket : sockets) sources.push_back(socket.fd);
  sources.push_back(ready[1]);
  // Above every source and every target, so that moving one into place
  // never overwrites another not moved yet.
  const int scratch = std::max(*std::max_element(sources.begin(), sources.end()), 3 + count) + 1;
  // How far to close descriptors without close_range(2).
  const int fd_limit = static_cast<int>(std::clamp<long>(::sysconf(_SC_OPEN_MAX), 1024, 1 << 20));

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(ready[0]);
    ::close(ready[1]);
    return fail("fork: {}", std::strerror(err));
  }
  if (pid == 0) {
    std::array<int, 1024> moved{};
    const std::size_t n = std::min(sources.size(), moved.size());
    // Close-on-exec: only the copies put in place below outlive the exec.
    for (std::size_t i = 0; i < n; ++i) moved[i] = ::fcntl(sources[i], F_DUPFD_CLOEXEC, scratch);
    // dup2 clears close-on-exec on the copy: these are the ones handed on.
    for (std::size_t i = 0; i < n; ++i) ::dup2(moved[i], 3 + static_cast<int>(i));
    // Nothing else of ours: the copies above, and every socket Asio made
    // (listening ones, a proxy's upstream connections) without close-on-exec,
    // would stay open in the new process for its whole life. A listening
    // socket held there keeps completing the handshakes of clients nobody
    // serves once it is removed; an upstream connection never sees its end.
    if (::close_range(3 + static_cast<unsigned>(n), ~0U, 0) != 0) {
      for (int fd = 3 + static_cast<int>(n); fd < fd_limit; ++fd) ::close(fd);
    }
    write_decimal(listen_pid, ::getpid());
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(path.c_str(), arg_pointers.data(), envp.data());
    _exit(127);
  }
  ::close(ready[1]);
  return std::unique_ptr<Successor>(new Successor(io, pid, ready[0]));
}

void Successor::wait(std::chrono::steady_clock::duration timeout, std::function<void(Result<void>)> done) {
  done_ = std::move(done);
  timer_.expires_after(timeout);
  timer_.async_wait([this, timeout](const boost::system::error_code& ec) {
    if (ec || finished_) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    finish(fail("was not ready within {} (killed)", format_duration(std::chrono::duration_cast<Duration>(timeout))));
  });
  watch();
}

void Successor::watch() {
  ready_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
    if (ec || finished_) return;
    char data[64];
    const ssize_t n = ::read(ready_.native_handle(), data, sizeof data);
    if (n > 0) received_.append(data, static_cast<std::size_t>(n));
    if (received_.find("READY\n") != std::string::npos) {
      finish(Result<void>());
      return;
    }
    if (n > 0) {
      // A part of the word: wait for the rest.
      watch();
      return;
    }
    // The pipe ended before the word: the process exited (or could not
    // start at all).
    int status = 0;
    ::waitpid(pid_, &status, 0);
    if (WIFEXITED(status)) exit_status_ = WEXITSTATUS(status);
    finish(fail("{} before it was ready", describe(status)));
  });
}

void Successor::finish(Result<void> outcome) {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  boost::system::error_code ignored;
  ready_.close(ignored);
  if (done_) std::exchange(done_, nullptr)(std::move(outcome));
}

}  // namespace portico
