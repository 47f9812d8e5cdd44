#pragma once
// Test support: run the real porticod on a temporary config and talk to it
// over real sockets on 127.0.0.1. Everything is bounded in time.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace portico::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// The porticod binary under test (set by CMake).
std::string porticod_path();

// Waits until poll(2) reports `events` on `fd`; false at `deadline` or on
// an error.
bool wait_fd(int fd, short events, Clock::time_point deadline);

// Waits until process `pid` (not necessarily this one's child) has exited:
// a zombie waiting for its parent counts as gone. False at `timeout`.
bool wait_gone(pid_t pid, Millis timeout);

// A fresh directory, removed with everything in it on destruction.
class TempDir {
 public:
  // World-writable, so that porticod running as `nobody` can create Unix
  // sockets in it.
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to a file in the directory and returns its path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

// Runs porticod to completion with `args`, capturing stdout and stderr.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult run_porticod(const std::vector<std::string>& args, Millis timeout = 10s, bool as_root = false);
// Runs any program (as the test's own user) with `input` on its stdin.
RunResult run_command(const std::vector<std::string>& args, const std::string& input = "", Millis timeout = 10s);

// tests/support/tls_client.py: one TLS connection (or `count`, resuming
// sessions with --resume) to 127.0.0.1:port; each connection's outcome as
// the JSON object the script prints (see the script), one per line.
std::vector<std::string> tls_client(std::uint16_t port, const std::vector<std::string>& options = {},
                                    Millis timeout = 20s);
// The string value of "key" in one of those JSON lines ("" when absent);
// booleans come back as "true" / "false".
std::string json_field(const std::string& line, const std::string& key);

// A porticod process serving a config written to a temp file. start() waits
// until it logs a "serving" line for each listener, and records each
// listener's real port.
class Daemon {
 public:
  struct Options {
    std::vector<std::string> extra_args = {};
    std::size_t listeners = 1;  // how many "serving" lines to wait for
    Millis startup = 10s;
    std::map<std::string, std::string> env = {};  // added to the environment
    // Called in the child before exec (e.g. setrlimit).
    void (*before_exec)() = nullptr;
    // porticod refuses to serve as root: when the tests run as root, the
    // daemon runs as `nobody` unless a test asks for root explicitly.
    bool as_root = false;
    // Passed the way systemd does socket activation: as fds 3, 4, ... with
    // LISTEN_FDS and LISTEN_PID set.
    std::vector<int> listen_fds = {};
    // Sets JOURNAL_STREAM to stderr's device:inode, as systemd does when
    // stderr is the journal.
    bool journal_stream = false;
  };

  static Daemon start(const std::string& config, Options options);
  static Daemon start(const std::string& config) { return start(config, Options{}); }

  Daemon(Daemon&&) noexcept;
  Daemon& operator=(Daemon&&) = delete;
  ~Daemon();

  pid_t pid() const { return pid_; }
  // The port of the listener named `name` (the first one when empty).
  std::uint16_t port(const std::string& name = "") const;
  const std::string& config_path() const { return config_path_; }
  // Rewrites the config file (for reload tests).
  void rewrite_config(const std::string& config) const;

  // Everything porticod wrote to stderr so far.
  std::string log() const;
  // Waits until the log contains `text` (counting occurrences after `from`
  // bytes of log); true when it appeared.
  bool wait_log(const std::string& text, Millis timeout = 5s, std::size_t from = 0) const;

  void signal(int sig) const;
  // Waits for the process to exit; returns its exit code, 128+N when killed
  // by signal N, or nullopt on timeout.
  std::optional<int> wait_exit(Millis timeout = 10s);
  bool running();

 private:
  Daemon() = default;
  std::unique_ptr<TempDir> dir_;
  std::string config_path_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::map<std::string, std::uint16_t> ports_;
  std::string first_listener_;
};

// A blocking TCP client with deadlines on every step.
class Client {
 public:
  // Connects to host:port (127.0.0.1 by default), from the local address
  // `source` when given (e.g. 127.0.0.2, to appear as another client);
  // throws on failure.
  explicit Client(std::uint16_t port, const std::string& host = "127.0.0.1", Millis timeout = 5s,
                  const std::string& source = "");
  // Connects to a Unix stream socket.
  static Client unix_socket(const std::string& path, Millis timeout = 5s);
  // Takes over a socket a test sets up itself (for options that must
  // precede connect()); it must be non-blocking once connected.
  static Client adopt(int fd);
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  int fd() const { return fd_; }
  // Sends all of `data`; false when the connection failed.
  bool send(const std::string& data);
  // Shuts down the sending side (the server then reads EOF).
  void shutdown_write();
  // Reads until EOF or `timeout`; `closed` tells which.
  std::string read_all(Millis timeout = 5s, bool* closed = nullptr);
  // Reads exactly n bytes, or fewer on EOF/timeout.
  std::string read_exactly(std::size_t n, Millis timeout = 5s);
  // Waits for the server to close: true on EOF or reset within `timeout`.
  bool wait_closed(Millis timeout = 5s);
  // The errno of the last failed step (0 when none).
  int last_error() const { return last_error_; }

 private:
  Client() = default;
  int fd_ = -1;
  int last_error_ = 0;
};

// CPU time (user + system) process `pid` used so far, from /proc/PID/stat:
// in steps of the kernel's clock tick (10ms at the usual 100Hz).
Millis cpu_time(pid_t pid);

// The porticoctl binary under test (set by CMake).
std::string porticoctl_path();

// Who a program runs as: a uid, a gid and supplementary groups.
struct Identity {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups = {};
};
// Runs porticoctl to completion with `args` as the test's own user, or as
// `as`, capturing stdout and stderr.
RunResult run_porticoctl(const std::vector<std::string>& args, Millis timeout = 20s,
                         const std::optional<Identity>& as = std::nullopt);

// A port of 127.0.0.1 that refuses connections: bound, not listening, so
// that no other socket (another test's server) can take it while this
// lives.
class RefusedPort {
 public:
  RefusedPort();
  ~RefusedPort();
  RefusedPort(const RefusedPort&) = delete;
  RefusedPort& operator=(const RefusedPort&) = delete;
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// Plain TCP connect that reports failure instead of throwing; -1 on error.
int try_connect(std::uint16_t port, const std::string& host = "127.0.0.1", Millis timeout = 2s,
                const std::string& source = "");

}  // namespace portico::test
