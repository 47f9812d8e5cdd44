#pragma once
// Binary upgrade without a refused connection. On SIGUSR2, porticod starts
// the binary at its own path again (the new one after a package upgrade),
// handing it every listening socket the way systemd does (LISTEN_FDS,
// LISTEN_PID, LISTEN_FDNAMES, from descriptor 3 on) and one more descriptor,
// named by PORTICO_UPGRADE_FD, on which the new process writes "READY\n"
// once it serves every listener. Only then does the old process stop
// accepting; it finishes its connections and exits. Meanwhile both accept
// from the same sockets, so no client is refused. A new process that exits,
// or is not ready in time, changes nothing: the old one goes on serving.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <portico/result.hpp>
#include <portico/server.hpp>

namespace portico {

// The new process, seen from the old one.
class Successor {
 public:
  // Starts `path` with arguments `argv` (argv[0] included) and the daemon's
  // environment, plus the sockets and the readiness descriptor. Fails with
  // the reason when no process could be started.
  static Result<std::unique_ptr<Successor>> start(boost::asio::io_context& io, const std::string& path,
                                                  const std::vector<std::string>& argv,
                                                  const std::vector<Server::ListeningSocket>& sockets);
  ~Successor();
  Successor(const Successor&) = delete;
  Successor& operator=(const Successor&) = delete;

  pid_t pid() const { return pid_; }
  // The new process's exit status once wait() saw it exit, else -1: 78
  // says its configuration has errors.
  int exit_status() const { return exit_status_; }

  // Calls `done` once: with success when the new process said it is
  // ready, else with why not ("exited with status 78", "was not ready
  // within 30s (killed)"). A process that failed is reaped.
  void wait(std::chrono::steady_clock::duration timeout, std::function<void(Result<void>)> done);

 private:
  Successor(boost::asio::io_context& io, pid_t pid, int ready_fd);
  void watch();
  void finish(Result<void> outcome);

  pid_t pid_;
  boost::asio::posix::stream_descriptor ready_;
  boost::asio::steady_timer timer_;
  std::function<void(Result<void>)> done_;
  std::string received_;
  bool finished_ = false;
  int exit_status_ = -1;
};

// In a new process: the descriptor PORTICO_UPGRADE_FD names, or -1 when
// this process is no upgrade; the variable is removed from the environment.
int take_upgrade_notification();
// Tells the old process that this one serves every listener, and closes the
// descriptor.
void tell_ready(int fd);

// The absolute path of this program, read at start: after a package
// upgrade replaced the file, /proc/self/exe would name a deleted one.
std::string own_path();

}  // namespace portico
