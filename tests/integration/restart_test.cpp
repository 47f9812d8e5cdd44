// Nothing lost across restarts and binary upgrades: clients that connect
// while porticod restarts (its sockets in systemd's file descriptor store)
// or upgrades (SIGUSR2) are served, none refused or reset.

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "support/daemon.hpp"

using namespace portico::test;
using namespace std::chrono_literals;

namespace {

std::string now_text() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  localtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%H:%M:%S", &tm);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return std::string(text) + "." + std::to_string(ms);
}

// Clients that connect, ask, check the greeting and close, in a loop, until
// stopped; every failure is counted with its kind.
class ClientLoop {
 public:
  ClientLoop(std::uint16_t port, int clients) {
    for (int i = 0; i < clients; ++i) {
      threads_.emplace_back([this, port] {
        while (!stop_) {
          const int fd = try_connect(port, "127.0.0.1", 5s);
          if (fd < 0) {
            fail("connect: " + std::string(std::strerror(errno)));
            continue;
          }
          Client c = Client::adopt(fd);
          if (!c.send("hello\n")) {
            fail("send: " + std::string(std::strerror(c.last_error())));
            continue;
          }
          bool closed = false;
          const std::string reply = c.read_all(10s, &closed);
          if (reply != "Hello from server!\n" || !closed) {
            fail("reply " + std::to_string(reply.size()) + " bytes" + (closed ? ", closed" : ", not closed") +
                 ", errno " + std::to_string(c.last_error()) + " at " + now_text());
            continue;
          }
          ++served_;
        }
      });
    }
  }
  ~ClientLoop() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::uint64_t served() const { return served_; }
  std::vector<std::string> failures() {
    std::lock_guard lock(mutex_);
    return failures_;
  }

 private:
  void fail(std::string what) {
    std::lock_guard lock(mutex_);
    failures_.push_back(std::move(what));
  }
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> served_{0};
  std::mutex mutex_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

// The pid of the newest process that logged it serves after an upgrade.
pid_t newest_upgraded(const std::string& log) {
  static const std::regex line(R"(upgrade: this process \(pid (\d+)\) serves every listener now)");
  pid_t pid = -1;
  for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) pid = std::stoi((*it)[1]);
  return pid;
}

}  // namespace

TEST_CASE("ten binary upgrades under a client loop: no client refused or reset", "[upgrade]") {
  auto d = Daemon::start("[daemon]\nshutdown_timeout = \"5s\"\n[[listener]]\nname = \"hello\"\n"
                         "address = \"127.0.0.1:0\"\n");
  ClientLoop clients(d.port(), 4);
  pid_t current = d.pid();
  for (int i = 0; i < 10; ++i) {
    INFO("upgrade " << i);
    std::this_thread::sleep_for(150ms);
    const std::size_t from = d.log().size();
    UNSCOPED_INFO("SIGUSR2 to " << current << " at " << now_text());
    REQUIRE(::kill(current, SIGUSR2) == 0);
    REQUIRE(d.wait_log("serves every listener now", 15s, from));
    const pid_t next = newest_upgraded(d.log());
    CHECK(next != current);
    // The old one finishes its connections and exits.
    if (current == d.pid()) {
      CHECK(d.wait_exit(15s) == 0);
    } else {
      CHECK(wait_gone(current, 15s));
    }
    current = next;
  }
  std::this_thread::sleep_for(300ms);
  clients.stop();
  for (const auto& failure : clients.failures()) UNSCOPED_INFO(failure);
  if (!clients.failures().empty()) UNSCOPED_INFO(d.log());
  CHECK(clients.failures().empty());
  CHECK(clients.served() > 100);
  ::kill(current, SIGTERM);
  CHECK(wait_gone(current, 15s));
}

TEST_CASE("an upgrade whose new process cannot start leaves the old one serving", "[upgrade]") {
  auto d = Daemon::start("[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n");
  // The new process reads the configuration again: now broken.
  d.rewrite_config("[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\nno_such_key = 1\n");
  d.signal(SIGUSR2);
  CHECK(d.wait_log("upgrade failed: the new process (pid "));
  CHECK(d.wait_log("exited with status 78 before it was ready; still serving"));
  Client c(d.port());
  REQUIRE(c.send("hello\n"));
  CHECK(c.read_all(5s) == "Hello from server!\n");
  CHECK(d.running());
}

TEST_CASE("a second SIGUSR2 during an upgrade is refused", "[upgrade]") {
  const std::string plain = "[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n";
  auto d = Daemon::start(plain);
  // The new process reads the configuration again, and now it names a
  // plugin that is a FIFO: its dlopen waits in open(2) until the test
  // opens the other end, so the upgrade is surely still in progress when
  // the second SIGUSR2 comes.
  TempDir dir;
  const std::string fifo = (dir.path() / "held.so").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  REQUIRE(::chmod(fifo.c_str(), 0666) == 0);
  d.rewrite_config("[daemon]\nplugins = [\"" + fifo + "\"]\n" + plain);
  d.signal(SIGUSR2);
  REQUIRE(d.wait_log("SIGUSR2: upgrading: started "));
  static const std::regex started(R"(upgrading: started \S+ as pid (\d+))");
  std::smatch m;
  const std::string log = d.log();
  REQUIRE(std::regex_search(log, m, started));
  const pid_t held = std::stoi(m[1]);
  d.signal(SIGUSR2);
  CHECK(d.wait_log("SIGUSR2: an upgrade is in progress already (new process " + std::to_string(held) +
                   "): this one is refused"));
  // The old process serves meanwhile.
  {
    Client c(d.port());
    REQUIRE(c.send("hello\n"));
    CHECK(c.read_all(5s) == "Hello from server!\n");
  }
  // Let the new process go on: its plugin is empty, so it fails, and the
  // old one goes on serving.
  // (A non-blocking open for writing fails with ENXIO until the new
  // process has reached its open for reading.)
  int writer = -1;
  for (int i = 0; i < 1000 && writer < 0; ++i) {
    writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (writer < 0) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(writer >= 0);
  ::close(writer);
  REQUIRE(d.wait_log("exited with status 78 before it was ready; still serving"));
  CHECK(d.running());

  // And the next SIGUSR2 upgrades.
  d.rewrite_config(plain);
  const std::size_t before = d.log().size();
  d.signal(SIGUSR2);
  REQUIRE(d.wait_log("serves every listener now", 15s, before));
  const pid_t next = newest_upgraded(d.log());
  CHECK(next != held);
  CHECK(d.wait_exit(15s) == 0);
  Client c(d.port());
  REQUIRE(c.send("hello\n"));
  CHECK(c.read_all(5s) == "Hello from server!\n");
  ::kill(next, SIGTERM);
  CHECK(wait_gone(next, 15s));
}

namespace {

// systemd's side of sd_notify(3) and its file descriptor store: a datagram
// socket at NOTIFY_SOCKET that keeps the descriptors sent with FDSTORE=1
// under their FDNAME and drops those named by FDSTOREREMOVE=1.
class FakeSystemd {
 public:
  explicit FakeSystemd(const TempDir& dir) : path_((dir.path() / "notify").string()) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) throw std::runtime_error("bind");
    // porticod may run as nobody.
    chmod(path_.c_str(), 0666);
    reader_ = std::thread([this] { read(); });
  }
  ~FakeSystemd() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    reader_.join();
    ::close(fd_);
    for (const auto& [name, fd] : store_) ::close(fd);
  }
  const std::string& path() const { return path_; }

  // What a start under systemd gets: the stored descriptors and their names.
  std::pair<std::vector<int>, std::string> stored() {
    std::lock_guard lock(mutex_);
    std::vector<int> fds;
    std::string names;
    for (const auto& [name, fd] : store_) {
      fds.push_back(fd);
      names += (names.empty() ? "" : ":") + name;
    }
    return {fds, names};
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return store_.size();
  }
  std::string messages() {
    std::lock_guard lock(mutex_);
    return messages_;
  }

 private:
  void read() {
    while (!stop_) {
      char data[4096];
      iovec io{data, sizeof data};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
      msghdr header{};
      header.msg_iov = &io;
      header.msg_iovlen = 1;
      header.msg_control = control;
      header.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(fd_, &header, MSG_CMSG_CLOEXEC);
      if (n <= 0) {
        if (stop_) return;
        continue;
      }
      int passed = -1;
      for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr; c = CMSG_NXTHDR(&header, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) std::memcpy(&passed, CMSG_DATA(c), sizeof(int));
      }
      const std::string text(data, static_cast<std::size_t>(n));
      std::lock_guard lock(mutex_);
      messages_ += text + "\n--\n";
      std::smatch m;
      static const std::regex name_line(R"(FDNAME=([^\n]*))");
      const bool has_name = std::regex_search(text, m, name_line);
      if (text.find("FDSTORE=1") != std::string::npos && passed >= 0 && has_name) {
        // The same socket stored again (by a new process) replaces the copy.
        if (auto it = store_.find(m[1]); it != store_.end()) ::close(it->second);
        store_[m[1]] = passed;
        passed = -1;
      } else if (text.find("FDSTOREREMOVE=1") != std::string::npos && has_name) {
        if (auto it = store_.find(m[1]); it != store_.end()) {
          ::close(it->second);
          store_.erase(it);
        }
      }
      if (passed >= 0) ::close(passed);
    }
  }

  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::map<std::string, int> store_;
  std::string messages_;
  std::thread reader_;
};

std::string two_listeners(bool with_extra) {
  std::string config = "[daemon]\nshutdown_timeout = \"5s\"\n[[listener]]\nname = \"hello\"\naddress = \"127.0.0.1:0\"\n"
                       "defer_accept = \"0s\"\n";
  if (with_extra) config += "[[listener]]\nname = \"extra\"\naddress = \"127.0.0.1:0\"\nhandler = \"echo\"\n";
  return config;
}

}  // namespace

TEST_CASE("ten restarts with systemd's file descriptor store: no client refused or reset", "[restart][systemd]") {
  TempDir dir;
  FakeSystemd systemd(dir);
  Daemon::Options first;
  first.listeners = 2;
  first.env = {{"NOTIFY_SOCKET", systemd.path()}};
  auto d = std::make_unique<Daemon>(Daemon::start(two_listeners(true), first));
  const std::uint16_t port = d->port("hello");
  const std::uint16_t extra_port = d->port("extra");
  // Both sockets reach the store.
  for (int i = 0; i < 500 && systemd.size() < 2; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(systemd.size() == 2);

  ClientLoop clients(port, 4);
  for (int i = 0; i < 10; ++i) {
    INFO("restart " << i);
    std::this_thread::sleep_for(150ms);
    // systemctl restart: stop, wait for the exit, start with what is stored.
    d->signal(SIGTERM);
    REQUIRE(d->wait_exit(15s) == 0);
    const auto [fds, names] = systemd.stored();
    Daemon::Options next;
    // The last restart drops the extra listener.
    const bool extra = i < 9;
    next.listeners = extra ? 2 : 1;
    next.listen_fds = fds;
    next.env = {{"NOTIFY_SOCKET", systemd.path()}, {"LISTEN_FDNAMES", names}};
    auto config = two_listeners(extra);
    // The same ports as before: the stored sockets are bound to them.
    config = std::regex_replace(config, std::regex("name = \"hello\"\naddress = \"127.0.0.1:0\""),
                                "name = \"hello\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"");
    config = std::regex_replace(config, std::regex("name = \"extra\"\naddress = \"127.0.0.1:0\""),
                                "name = \"extra\"\naddress = \"127.0.0.1:" + std::to_string(extra_port) + "\"");
    d = std::make_unique<Daemon>(Daemon::start(config, next));
    CHECK(d->port("hello") == port);
    CHECK(d->wait_log("listener \"hello\": using the socket passed in"));
  }
  std::this_thread::sleep_for(300ms);
  clients.stop();
  for (const auto& failure : clients.failures()) UNSCOPED_INFO(failure);
  CHECK(clients.failures().empty());
  CHECK(clients.served() > 100);

  // The removed listener's socket left the store and is closed for good.
  CHECK(d->wait_log("closing inherited socket"));
  for (int i = 0; i < 500 && systemd.size() > 1; ++i) std::this_thread::sleep_for(10ms);
  CHECK(systemd.size() == 1);
  CHECK(systemd.messages().find("FDSTOREREMOVE=1") != std::string::npos);
  if (try_connect(extra_port) >= 0) {
    const auto ss = run_command({"ss", "-ltnp", "sport = :" + std::to_string(extra_port)});
    UNSCOPED_INFO(ss.out);
  }
  CHECK(try_connect(extra_port) < 0);
}
