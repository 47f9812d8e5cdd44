#pragma once
// porticod's control socket ([daemon] control_socket): a Unix stream socket
// that porticoctl (or a person with socat) sends one-line requests to (see
// ctl/protocol.hpp). Every client is checked once, when it connects, by the
// credentials the kernel gives (SO_PEERCRED, SO_PEERGROUPS): root, or a
// process whose group or supplementary groups include the socket's group.
//
// What a client can do to the daemon is bounded: at most
// max_control_clients at once (the next ones get an error and are closed),
// request lines of at most max_request_line bytes, a line must be finished
// within line_timeout of its first byte, a client silent for idle_timeout
// is closed, and an answer it does not read within write_timeout is
// dropped with the connection.

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <spdlog/logger.h>

#include <portico/duration.hpp>

#include "ctl/protocol.hpp"

namespace portico {

class ControlServer {
 public:
  static constexpr std::size_t max_control_clients = 16;
  static constexpr Duration line_timeout = std::chrono::seconds(10);
  static constexpr Duration idle_timeout = std::chrono::seconds(60);
  static constexpr Duration write_timeout = std::chrono::seconds(10);

  // Who sent a request.
  struct Peer {
    pid_t pid;
    uid_t uid;
    gid_t gid;
    // "uid 0 (pid 1234)": for log lines.
    std::string describe() const;
  };
  struct Answer {
    control::Status status;
    std::vector<std::string> body;
  };
  // Answers a request, now or later (a reload, a drain, a probe), exactly
  // once; on the io_context's thread.
  using Reply = std::function<void(Answer)>;
  using Handler = std::function<void(const control::Request&, const Peer&, Reply)>;

  ControlServer(boost::asio::io_context& io, std::shared_ptr<spdlog::logger> log, Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds and listens on `path`, replacing a socket file no process listens
  // on, with mode 0660 and group `group` (and owner `owner` when root), so
  // that root and that group's members may connect. Before privileges are
  // dropped. With `replace_live`, a socket another process listens on is
  // replaced too (the old process of an upgrade). Throws
  // std::runtime_error saying why it cannot.
  void bind(const std::string& path, uid_t owner, gid_t group, bool replace_live = false);
  // Starts accepting clients.
  void start();
  // Stops accepting and closes every client; the socket file is left to the
  // caller (who may no longer have the right to remove it).
  void stop();
  // Calls `done` once every answer given already has been written to its
  // client, or after write_timeout: the last word of a process about to
  // exit (an upgrade's outcome) still reaches whoever asked.
  void after_answers(std::function<void()> done);
  const std::string& path() const { return path_; }

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
  std::string path_;
};

}  // namespace portico
