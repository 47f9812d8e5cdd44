// What echo, discard and the proxy cost the event loop, counted with strace
// attached to porticod: a connection that waited is registered with epoll
// once (EPOLL_CTL_ADD), and its close removes it from epoll by itself, so no
// EPOLL_CTL_DEL is due; a message that emptied the socket is not followed
// by a read that fails with EAGAIN. Skipped, saying why, where strace is
// missing or may not attach (ptrace not permitted).

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "handlers/service_support.hpp"
#include "support/daemon.hpp"

using namespace portico::test;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::optional<std::string> find_in_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

// strace attached to a running process, writing the calls `calls` names
// (strace's -e syntax) to a file until stop().
class EpollTrace {
 public:
  // nullopt, with the reason in `why`, when strace is missing or could not
  // attach within 5s.
  static std::optional<EpollTrace> attach(pid_t pid, const TempDir& dir, std::string& why,
                                          const std::string& calls = "trace=epoll_ctl") {
    const auto strace = find_in_path("strace");
    if (!strace) {
      why = "strace is not installed (tools/deps installs it)";
      return std::nullopt;
    }
    EpollTrace trace;
    trace.out_ = (dir.path() / "trace").string();
    const std::string err = (dir.path() / "strace.err").string();
    const std::string target = std::to_string(pid);
    const pid_t child = fork();
    if (child < 0) {
      why = "fork failed";
      return std::nullopt;
    }
    if (child == 0) {
      const int fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      execl(strace->c_str(), "strace", "-f", "-e", calls.c_str(), "-o", trace.out_.c_str(), "-p", target.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    trace.pid_ = child;
    // strace says "Process N attached" once it traces the process.
    for (const auto until = Clock::now() + 5s; Clock::now() < until;) {
      if (read_file(err).find("attached") != std::string::npos) return trace;
      int status = 0;
      if (waitpid(child, &status, WNOHANG) == child) {
        trace.pid_ = -1;
        why = "strace could not attach to porticod: " + read_file(err);
        return std::nullopt;
      }
      std::this_thread::sleep_for(10ms);
    }
    why = "strace did not attach within 5s: " + read_file(err);
    return std::nullopt;
  }

  EpollTrace(EpollTrace&& other) noexcept : pid_(std::exchange(other.pid_, -1)), out_(std::move(other.out_)) {}
  EpollTrace& operator=(EpollTrace&&) = delete;
  ~EpollTrace() { stop(); }

  // Detaches strace (the process runs on) and returns the calls it saw.
  std::string stop() {
    if (pid_ > 0) {
      kill(pid_, SIGINT);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    return read_file(out_);
  }

 private:
  EpollTrace() = default;
  pid_t pid_ = -1;
  std::string out_;
};

// Each client sends twice, with the answer in between, so that its
// connection waits for the second message on the event loop.
void talk_twice(std::uint16_t port, bool answers) {
  Client c(port);
  REQUIRE(c.send("one\n"));
  if (answers) {
    REQUIRE(c.read_exactly(4, 3s) == "one\n");
  } else {
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(c.send("two\n"));
  if (answers) REQUIRE(c.read_exactly(4, 3s) == "two\n");
  c.shutdown_write();
  CHECK(c.wait_closed(3s));
}

}  // namespace

TEST_CASE("echo and discard close their connections without an EPOLL_CTL_DEL each", "[handlers][echo][discard]") {
  const std::string handler = GENERATE(std::string("echo"), std::string("discard"));
  INFO(handler);
  auto d = Daemon::start(service_config(handler));
  TempDir dir;
  std::string why;
  auto trace = EpollTrace::attach(d.pid(), dir, why);
  if (!trace) {
    WARN("skipped: " << why);
    return;
  }
  constexpr int connections = 50;
  // Each ends with porticod's close, before the next starts.
  for (int i = 0; i < connections; ++i) talk_twice(d.port(), handler == "echo");
  const std::string calls = trace->stop();
  const std::size_t added = count(calls, "EPOLL_CTL_ADD");
  const std::size_t removed = count(calls, "EPOLL_CTL_DEL");
  INFO("epoll_ctl calls for " << connections << " connections:\n" << calls);
  // The connections did wait on the event loop...
  CHECK(added >= connections);
  // ...and closing them needed no system call to leave it.
  CHECK(removed == 0);
  // Asking epoll to report the client's end (EPOLLRDHUP) is one change of
  // the registration per connection at most, not one per message.
  CHECK(count(calls, "EPOLLRDHUP") <= static_cast<std::size_t>(connections));
}

TEST_CASE("a proxied round trip reads each message once: no read that fails with EAGAIN after it",
          "[handlers][proxy][echo]") {
  // porticod's own echo on a Unix socket as the upstream: the trace sees
  // the proxy's reads and the echo's.
  TempDir sockets;
  const std::string path = (sockets.path() / "echo.sock").string();
  auto d = Daemon::start("[[listener]]\nname = \"proxy\"\naddress = \"127.0.0.1:0\"\nhandler = \"proxy\"\n"
                         "upstream = [\"unix:" + path + "\"]\n"
                         "[[listener]]\nname = \"echo\"\naddress = \"unix:" + path + "\"\nhandler = \"echo\"\n");
  Client c(d.port("proxy"));
  // Warm up: the connection to the upstream is made, both registered.
  REQUIRE(c.send("warm\n"));
  REQUIRE(c.read_exactly(5, 3s) == "warm\n");
  TempDir dir;
  std::string why;
  auto trace = EpollTrace::attach(d.pid(), dir, why, "trace=recvfrom,recvmsg,read");
  if (!trace) {
    WARN("skipped: " << why);
    return;
  }
  constexpr int round_trips = 50;
  for (int i = 0; i < round_trips; ++i) {
    const std::string message = "message " + std::to_string(i) + "\n";
    REQUIRE(c.send(message));
    REQUIRE(c.read_exactly(message.size(), 3s) == message);
  }
  const std::string calls = trace->stop();
  INFO("reads for " << round_trips << " round trips:\n" << calls);
  // Each round trip: the proxy reads the request and the answer, the echo
  // the request, each in one read. A read that returned less than it asked
  // for, on an edge of epoll that reported no end (EPOLLRDHUP), hang-up or
  // error, emptied its socket: the next read waits for the next edge.
  // (Before, each was followed by one that failed: 150 more.) An end that
  // came with a message is still seen: "echo closes when a message and the
  // client's end come together", "proxy passes on a last message and the
  // end that came with it".
  CHECK(count(calls, "EAGAIN") <= 3);
  const std::size_t with_data = count(calls, "recvfrom(") - count(calls, "EAGAIN");
  CHECK(with_data >= 3 * round_trips);
  CHECK(with_data <= 3 * round_trips + 3);
}
