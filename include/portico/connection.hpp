#pragma once
// One accepted client connection: the handler's whole view of its client.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/logger.h>

#include <portico/endpoint.hpp>
#include <portico/log_throttle.hpp>
#include <portico/stream.hpp>

namespace portico {

class Server;

// The server creates a Connection for every client it admits and hands it to
// the listener's handler by reference; it stays valid until serve()
// returns, and the server closes it then. Its I/O (<portico/stream.hpp>)
// applies the listener's idle_timeout and session_timeout on top of each
// call's own timeout. Every member runs on the server's thread.
class Connection : public Stream {
 public:
  // The client: the address a PROXY protocol header named, when the
  // listener expects one, else the socket's peer.
  const Endpoint& peer() const { return peer_; }
  // The address the client connected to (the PROXY header's destination,
  // when it named one). Looked up on the first call.
  const Endpoint& local() const;
  std::string_view listener_name() const { return listener_name_; }
  // When the connection was accepted.
  clock::time_point accepted_at() const { return accepted_at_; }
  // The server the connection belongs to (read-only: its status and
  // metrics, for a handler that reports them).
  const Server& server() const { return *server_; }

  // Adds a field to the connection's access-log line (the proxy adds the
  // upstream it used). Kept only when the listener writes an access log:
  // check annotating() first to skip building a value nobody reads. Keys
  // are lowercase words joined by '_'.
  bool annotating() const { return annotations_ != nullptr; }
  void annotate(std::string key, std::string value) {
    if (annotations_) annotations_->emplace_back(std::move(key), std::move(value));
  }

  // Logging with the listener name and peer in front of every line. Nothing
  // is formatted when `level` is off.
  bool should_log(spdlog::level::level_enum level) const { return logger_.should_log(level); }
  template <typename... Args>
  void log(spdlog::level::level_enum level, fmt::format_string<Args...> format, Args&&... args) {
    if (!logger_.should_log(level)) return;
    write_log(level, fmt::vformat(format, fmt::make_format_args(args...)));
  }
  // log(), for a line that may repeat in a flood (a limit reached, an
  // upstream down): through `throttle`, at most one line per interval, each
  // saying how many were held back; what a burst held back after its last
  // line is logged when the interval ends ("... and 12 more").
  template <typename... Args>
  void log_throttled(LogThrottle& throttle, spdlog::level::level_enum level, fmt::format_string<Args...> format,
                     Args&&... args) {
    if (!logger_.should_log(level)) return;
    std::uint64_t held = 0;
    if (!throttle.allow(held, executor(), [&logger = logger_, level, name = std::string(listener_name_)](std::uint64_t n) {
          logger.log(level, "[{}] ... and {} more like the last line since it was logged", name, n);
        })) {
      return;
    }
    std::string text = fmt::vformat(format, fmt::make_format_args(args...));
    if (held > 0) text += fmt::format(" ({} more since the last report)", held);
    write_log(level, text);
  }

 protected:
  Connection(const executor_type& executor, int family, int accepted_fd, Endpoint peer,
             std::string_view listener_name, spdlog::logger& logger);
  ~Connection();

  Endpoint peer_;
  mutable std::unique_ptr<Endpoint> local_;  // until asked for, or set from a PROXY header
  const Server* server_ = nullptr;
  std::unique_ptr<std::vector<std::pair<std::string, std::string>>> annotations_;

 private:
  void write_log(spdlog::level::level_enum level, std::string_view text);

  std::string_view listener_name_;
  spdlog::logger& logger_;
  clock::time_point accepted_at_ = clock::now();
};

}  // namespace portico
