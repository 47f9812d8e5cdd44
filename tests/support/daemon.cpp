#include "support/daemon.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace portico::test {

namespace fs = std::filesystem;

std::string porticoctl_path() {
  if (const char* env = std::getenv("PORTICOCTL")) return env;
  return PORTICOCTL_PATH;
}

std::string porticod_path() {
  if (const char* env = std::getenv("PORTICOD")) return env;
  return PORTICOD_PATH;
}

TempDir::TempDir() {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate = fs::temp_directory_path() / ("portico-test-" + std::to_string(rd()));
    if (fs::create_directory(candidate)) {
      fs::permissions(candidate, fs::perms::all);
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  const auto file = path_ / name;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << content;
  return file.string();
}

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<char*> make_argv(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

constexpr uid_t nobody = 65534;

struct SpawnOptions {
  std::map<std::string, std::string> env = {};
  void (*before_exec)() = nullptr;
  bool as_root = false;
  std::vector<int> listen_fds = {};
  bool journal_stream = false;
  std::string stdin_path = "/dev/null";
  // Run as this user instead (from root).
  std::optional<Identity> identity = std::nullopt;
};

pid_t spawn(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path,
            const SpawnOptions& options) {
  auto argv = make_argv(args);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    const int devnull = open(options.stdin_path.c_str(), O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(devnull, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (const auto& [k, v] : options.env) setenv(k.c_str(), v.c_str(), 1);
    if (!options.listen_fds.empty()) {
      // Move them out of the way first, then into place from fd 3 on.
      std::vector<int> moved;
      for (int fd : options.listen_fds) moved.push_back(fcntl(fd, F_DUPFD_CLOEXEC, 100));
      for (std::size_t i = 0; i < moved.size(); ++i) dup2(moved[i], 3 + static_cast<int>(i));
      setenv("LISTEN_FDS", std::to_string(moved.size()).c_str(), 1);
      setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
    }
    if (options.journal_stream) {
      struct stat st {};
      fstat(2, &st);
      setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str(), 1);
    }
    if (options.before_exec) options.before_exec();
    if (const auto& as = options.identity;
        as && (setgroups(as->groups.size(), as->groups.data()) != 0 || setgid(as->gid) != 0 || setuid(as->uid) != 0)) {
      _exit(126);
    }
    if (getuid() == 0 && !options.as_root &&
        (setgroups(0, nullptr) != 0 || setgid(nobody) != 0 || setuid(nobody) != 0)) {
      _exit(126);
    }
    execvp(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

std::optional<int> wait_pid(pid_t pid, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

// Runs `args` to completion (killed after `timeout`), capturing stdout and
// stderr.
RunResult run_captured(const std::vector<std::string>& args, SpawnOptions options, Millis timeout,
                       const std::string& input = "") {
  TempDir dir;
  const auto out = (dir.path() / "stdout").string();
  const auto err = (dir.path() / "stderr").string();
  if (!input.empty()) options.stdin_path = dir.write("stdin", input);
  const pid_t pid = spawn(args, out, err, options);
  RunResult result;
  auto code = wait_pid(pid, timeout);
  if (!code) {
    kill(pid, SIGKILL);
    code = wait_pid(pid, 5s);
  }
  result.exit_code = code.value_or(-1);
  result.out = read_file(out);
  result.err = read_file(err);
  return result;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

}  // namespace

RunResult run_porticod(const std::vector<std::string>& args, Millis timeout, bool as_root) {
  std::vector<std::string> full{porticod_path()};
  full.insert(full.end(), args.begin(), args.end());
  return run_captured(full, SpawnOptions{.as_root = as_root}, timeout);
}

RunResult run_porticoctl(const std::vector<std::string>& args, Millis timeout, const std::optional<Identity>& as) {
  std::vector<std::string> full{porticoctl_path()};
  full.insert(full.end(), args.begin(), args.end());
  return run_captured(full, SpawnOptions{.as_root = true, .identity = as}, timeout);
}

RefusedPort::RefusedPort() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    throw std::runtime_error(std::string("RefusedPort: ") + std::strerror(errno));
  }
  port_ = ntohs(address.sin_port);
}

RefusedPort::~RefusedPort() {
  if (fd_ >= 0) ::close(fd_);
}

RunResult run_command(const std::vector<std::string>& args, const std::string& input, Millis timeout) {
  return run_captured(args, SpawnOptions{.as_root = true}, timeout, input);
}

std::vector<std::string> tls_client(std::uint16_t port, const std::vector<std::string>& options, Millis timeout) {
  std::vector<std::string> args{"/usr/bin/python3", TLS_CLIENT_PATH, "--port", std::to_string(port)};
  args.insert(args.end(), options.begin(), options.end());
  const RunResult run = run_command(args, "", timeout);
  if (run.exit_code != 0) throw std::runtime_error("tls_client.py failed (" + std::to_string(run.exit_code) + "): " + run.err);
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t nl; (nl = run.out.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(run.out.substr(start, nl - start));
  }
  return lines;
}

std::string json_field(const std::string& line, const std::string& key) {
  const std::string needle = "\"" + key + "\": ";
  const auto at = line.find(needle);
  if (at == std::string::npos) return {};
  std::size_t i = at + needle.size();
  if (i < line.size() && line[i] != '"') {
    const auto end = line.find_first_of(",}", i);
    return line.substr(i, end - i);
  }
  std::string value;
  for (++i; i < line.size() && line[i] != '"'; ++i) {
    if (line[i] == '\\' && i + 1 < line.size()) {
      ++i;
      switch (line[i]) {
        case 'n': value += '\n'; break;
        case 'r': value += '\r'; break;
        case 't': value += '\t'; break;
        default: value += line[i];
      }
    } else {
      value += line[i];
    }
  }
  return value;
}

Daemon Daemon::start(const std::string& config, Options options) {
  Daemon d;
  d.dir_ = std::make_unique<TempDir>();
  d.config_path_ = d.dir_->write("portico.toml", config);
  d.log_path_ = (d.dir_->path() / "stderr").string();
  std::vector<std::string> args{porticod_path(), "-c", d.config_path_};
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  d.pid_ = spawn(args, (d.dir_->path() / "stdout").string(), d.log_path_, 
                 SpawnOptions{options.env, options.before_exec, options.as_root, options.listen_fds,
                              options.journal_stream});

  // "serving NAME on 127.0.0.1:PORT (handler)"; a Unix listener has no port.
  static const std::regex serving(R"(serving (\S+) on (?:unix:\S+|\S+:(\d+)) \()");
  const auto deadline = Clock::now() + options.startup;
  for (;;) {
    const std::string log = d.log();
    d.ports_.clear();
    d.first_listener_.clear();
    for (std::sregex_iterator it(log.begin(), log.end(), serving), end; it != end; ++it) {
      if (d.first_listener_.empty()) d.first_listener_ = (*it)[1];
      d.ports_[(*it)[1]] = (*it)[2].matched ? static_cast<std::uint16_t>(std::stoi((*it)[2])) : 0;
    }
    if (d.ports_.size() >= options.listeners) return d;
    if (!d.running()) {
      throw std::runtime_error("porticod exited with " + std::to_string(d.exit_code_.value_or(-1)) +
                               " during start-up:\n" + log);
    }
    if (Clock::now() >= deadline) throw std::runtime_error("porticod did not start in time:\n" + log);
    std::this_thread::sleep_for(5ms);
  }
}

Daemon::Daemon(Daemon&& other) noexcept
    : dir_(std::move(other.dir_)),
      config_path_(std::move(other.config_path_)),
      log_path_(std::move(other.log_path_)),
      pid_(std::exchange(other.pid_, -1)),
      exit_code_(other.exit_code_),
      ports_(std::move(other.ports_)),
      first_listener_(std::move(other.first_listener_)) {}

Daemon::~Daemon() {
  if (pid_ > 0 && !exit_code_) {
    kill(pid_, SIGKILL);
    wait_pid(pid_, 5s);
  }
}

std::uint16_t Daemon::port(const std::string& name) const {
  const auto it = ports_.find(name.empty() ? first_listener_ : name);
  if (it == ports_.end()) throw std::runtime_error("no listener named " + name);
  return it->second;
}

void Daemon::rewrite_config(const std::string& config) const {
  // Write then rename, as an editor does, so a reload never reads half a file.
  const auto tmp = config_path_ + ".tmp";
  std::ofstream(tmp, std::ios::binary | std::ios::trunc) << config;
  fs::rename(tmp, config_path_);
}

std::string Daemon::log() const { return read_file(log_path_); }

bool Daemon::wait_log(const std::string& text, Millis timeout, std::size_t from) const {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const std::string log = this->log();
    if (log.size() > from && log.find(text, from) != std::string::npos) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

void Daemon::signal(int sig) const { kill(pid_, sig); }

std::optional<int> Daemon::wait_exit(Millis timeout) {
  if (!exit_code_) exit_code_ = wait_pid(pid_, timeout);
  return exit_code_;
}

bool Daemon::running() {
  if (exit_code_) return false;
  exit_code_ = wait_pid(pid_, 0ms);
  return !exit_code_;
}

bool wait_gone(pid_t pid, Millis timeout) {
  const auto running = [pid] {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    std::getline(stat, text);
    const auto end = text.rfind(')');
    return end != std::string::npos && end + 2 < text.size() && text[end + 2] != 'Z';
  };
  const auto deadline = Clock::now() + timeout;
  while (running()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

bool wait_fd(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int r = poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

namespace {

int connect_with_timeout(int family, const sockaddr* addr, socklen_t len, Millis timeout,
                         const sockaddr* source = nullptr, socklen_t source_len = 0) {
  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (source != nullptr && bind(fd, source, source_len) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  if (connect(fd, addr, len) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      const int e = errno;
      close(fd);
      errno = e;
      return -1;
    }
    if (!wait_fd(fd, POLLOUT, Clock::now() + timeout)) {
      close(fd);
      errno = ETIMEDOUT;
      return -1;
    }
    int err = 0;
    socklen_t err_len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) {
      close(fd);
      errno = err;
      return -1;
    }
  }
  return fd;
}

}  // namespace

socklen_t make_sockaddr(const std::string& host, std::uint16_t port, sockaddr_storage& storage) {
  storage = {};
  if (host.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
    return sizeof *a;
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&storage);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &a->sin_addr);
  return sizeof *a;
}

Millis cpu_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  // Fields 14 and 15 (utime, stime), counted from the one after the
  // command name, which may hold spaces.
  const auto name_end = line.rfind(')');
  if (name_end == std::string::npos) throw std::runtime_error("cannot read /proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(line.substr(name_end + 2));
  std::string field;
  long ticks = 0;
  for (int i = 3; fields >> field && i <= 15; ++i) {
    if (i >= 14) ticks += std::stol(field);
  }
  return Millis(ticks * 1000 / sysconf(_SC_CLK_TCK));
}

int try_connect(std::uint16_t port, const std::string& host, Millis timeout, const std::string& source) {
  sockaddr_storage storage{};
  const socklen_t len = make_sockaddr(host, port, storage);
  sockaddr_storage from{};
  socklen_t from_len = 0;
  if (!source.empty()) from_len = make_sockaddr(source, 0, from);
  return connect_with_timeout(storage.ss_family, reinterpret_cast<sockaddr*>(&storage), len, timeout,
                              source.empty() ? nullptr : reinterpret_cast<sockaddr*>(&from), from_len);
}

Client::Client(std::uint16_t port, const std::string& host, Millis timeout, const std::string& source) {
  fd_ = try_connect(port, host, timeout, source);
  if (fd_ < 0) {
    throw std::runtime_error("connect to " + host + ":" + std::to_string(port) + ": " + std::strerror(errno));
  }
}

Client Client::unix_socket(const std::string& path, Millis timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  Client c;
  c.fd_ = connect_with_timeout(AF_UNIX, reinterpret_cast<sockaddr*>(&addr), sizeof addr, timeout);
  if (c.fd_ < 0) throw std::runtime_error("connect to unix:" + path + ": " + std::strerror(errno));
  return c;
}

Client Client::adopt(int fd) {
  Client c;
  c.fd_ = fd;
  return c;
}

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), last_error_(other.last_error_) {}

Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    last_error_ = other.last_error_;
  }
  return *this;
}

Client::~Client() {
  if (fd_ >= 0) close(fd_);
}

bool Client::send(const std::string& data) {
  std::size_t sent = 0;
  const auto deadline = Clock::now() + 10s;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_fd(fd_, POLLOUT, deadline)) {
        last_error_ = ETIMEDOUT;
        return false;
      }
      continue;
    }
    last_error_ = errno;
    return false;
  }
  return true;
}

void Client::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

std::string Client::read_all(Millis timeout, bool* closed) {
  std::string out;
  const auto deadline = Clock::now() + timeout;
  if (closed) *closed = false;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) {
      if (closed) *closed = true;
      return out;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      if (!wait_fd(fd_, POLLIN, deadline)) {
        last_error_ = ETIMEDOUT;
        return out;
      }
      continue;
    }
    last_error_ = errno;
    if (closed) *closed = true;
    return out;
  }
}

std::string Client::read_exactly(std::size_t n, Millis timeout) {
  std::string out;
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (out.size() < n) {
    const ssize_t r = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r > 0) {
      out.append(buf, static_cast<std::size_t>(r));
      continue;
    }
    if (r == 0) return out;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      if (!wait_fd(fd_, POLLIN, deadline)) {
        last_error_ = ETIMEDOUT;
        return out;
      }
      continue;
    }
    last_error_ = errno;
    return out;
  }
  return out;
}

bool Client::wait_closed(Millis timeout) {
  bool closed = false;
  read_all(timeout, &closed);
  return closed;
}

}  // namespace portico::test
