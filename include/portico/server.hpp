#pragma once
// The server: listeners bound from a config, serving on one io_context.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <spdlog/logger.h>

#include <portico/config.hpp>
#include <portico/events.hpp>
#include <portico/registry.hpp>
#include <portico/result.hpp>
#include <portico/stream.hpp>

namespace portico {

class MetricsWriter;

// Owns the listeners and their connections. All members must be called on
// the io_context's thread (or before it runs). The registry and logger must
// outlive the server.
class Server {
 public:
  Server(boost::asio::io_context& io, const Registry& registry, std::shared_ptr<spdlog::logger> logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // A listening socket passed to this process: by systemd (socket
  // activation, or its file descriptor store on a restart) or by the
  // porticod this one upgrades. `name` is the LISTEN_FDNAMES entry.
  struct InheritedSocket {
    int fd;
    std::string name;
  };

  // Builds every listener's handler and binds every listener; only when all
  // succeeded does it start accepting. On failure nothing stays open and
  // the error names the listener, the address and the OS error. An
  // inherited socket is used instead of binding for the listener whose
  // socket_name() it carries and whose address it is bound to, or else for
  // a listener with its address; the others are logged and closed (and
  // listed by unused_inherited()).
  Result<void> start(const Config& config, const std::vector<InheritedSocket>& inherited = {});
  // The names of the inherited sockets start() closed because no listener
  // wanted them.
  const std::vector<std::string>& unused_inherited() const;

  // Applies a new configuration: a listener whose address is unchanged keeps
  // its socket and serves new connections with the new options (open ones
  // finish with the old handler); removed listeners stop accepting (after
  // taking the clients the kernel holds for them) and their connections
  // drain for up to the new shutdown_timeout; new listeners open. If a
  // handler cannot be built or a new listener cannot bind, nothing changes
  // and the error says why. Returns a one-line summary.
  Result<std::string> reload(const Config& config);

  struct ListenerInfo {
    std::string name;
    std::string address;  // with the real port when port 0 was asked
    std::string handler;
  };
  std::vector<ListenerInfo> listeners() const;

  std::size_t connection_count() const;
  // "3 listeners, 12 connections, 4051 accepted, 7 refused": for logs and
  // systemd's STATUS=.
  std::string status() const;

  // ---- Observing --------------------------------------------------------

  // Hears of every ended and refused connection of the listeners whose
  // config has access_log on; nullptr for none (the default, which costs
  // nothing per connection).
  void set_observer(std::shared_ptr<ConnectionObserver> observer);

  enum class ListenerState : std::uint8_t {
    serving,   // accepting
    paused,    // at max_connections (on_limit = "pause"): clients wait in the backlog
    disabled,  // by disable(): clients wait in the backlog until enable()
    draining,  // by drain(): disabled, waiting for its connections to end
  };
  struct ListenerStatus {
    std::string name;
    std::string address;
    std::string handler;
    ListenerState state;
    std::size_t open;  // connections open now
    ListenerCounters counters;
    std::vector<std::string> handler_status;  // Handler::status() of its handler
  };
  // The listeners of the running configuration, in config order.
  std::vector<ListenerStatus> listener_status() const;

  struct ConnectionStatus {
    std::string listener;
    Endpoint peer;
    Duration age;
    std::uint64_t bytes_received;
    std::uint64_t bytes_sent;
    Stream::Activity activity;  // what the handler waits for
  };
  // The open connections, of every listener or of the one called
  // `listener` (connections of listeners a reload removed included).
  std::vector<ConnectionStatus> connections(std::string_view listener = {}) const;

  // Every series of the server and of its listeners' handlers
  // (Handler::write_metrics), labelled by listener.
  void write_metrics(MetricsWriter& out) const;
  // Counts a reload's outcome for the metrics (the program reads and
  // checks the file before Server::reload ever runs, so it reports both).
  void record_reload(bool ok);

  // ---- Controlling one listener ------------------------------------------

  // Stops accepting on the listener called `name` (its socket stays bound,
  // new clients wait in the kernel's backlog, open connections go on), or
  // starts again. An error names an unknown listener.
  Result<void> disable(std::string_view name);
  Result<void> enable(std::string_view name);
  // Disables the listener, then waits until its connections end, for at
  // most `timeout`, and closes those left; `done` gets how many were cut.
  Result<void> drain(std::string_view name, Duration timeout, std::function<void(std::size_t cut)> done);

  // What identifies a listener's socket when it is handed to another
  // process (FDNAME in systemd's file descriptor store): "portico-" and a
  // hash of the listener's name, letters and digits only.
  static std::string socket_name(const ListenerConfig& listener);
  struct ListeningSocket {
    std::string name;  // socket_name()
    std::string listener;
    int fd;            // owned by the server
  };
  std::vector<ListeningSocket> listening_sockets() const;

  // The listening sockets live on elsewhere (systemd's file descriptor
  // store): a listener that stops leaves its Unix socket file in place.
  void keep_socket_files();
  // Another process took over the listening sockets (a binary upgrade):
  // stop accepting at once, close them without removing socket files and
  // without taking what the kernel queued (the other process accepts it).
  // Connections in progress go on; shutdown() then lets them finish.
  void hand_over();

  // Stops accepting new clients (the ones the kernel already holds are
  // still taken and served), lets connections finish for up to `grace`,
  // then closes the rest, and calls `done` when none remain. Calling it
  // again closes everything at once.
  void shutdown(Duration grace, std::function<void()> done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portico
