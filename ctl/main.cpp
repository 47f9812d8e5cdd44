// porticoctl: sends one request to porticod's control socket and prints the
// answer (ctl/protocol.hpp has the protocol, porticoctl(8) the commands).

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <portico/config.hpp>
#include <portico/text.hpp>
#include <portico/version.hpp>

#include "ctl/cli.hpp"
#include "ctl/protocol.hpp"

namespace {

using namespace portico::control;
using Clock = std::chrono::steady_clock;
using portico::Duration;

// How long porticod may take to answer, beyond the timeout of a drain or an
// upgrade: a reload waits for the one before it, a probe takes up to 6
// seconds, an upgrade waits for a reload in progress.
constexpr auto answer_time = std::chrono::seconds(60);

// A failure of porticoctl itself: the message on stderr, and with --json
// the same as the JSON porticod answers errors with.
int failure(bool json, int code, const std::string& message) {
  std::cerr << "porticoctl: " << portico::escape_controls(message) << "\n";
  if (json) {
    JsonWriter out;
    out.begin_object().field("error", message).field("code", code).key("details").begin_array().end_array();
    out.end_object();
    std::cout << out.str() << "\n";
  }
  return code;
}

// The socket to use: -s, else [daemon] control_socket of the config file.
std::optional<std::string> socket_path(const Cli& cli, int& code, std::string& why) {
  if (!cli.socket.empty()) return cli.socket;
  std::error_code ec;
  if (!std::filesystem::exists(cli.config, ec)) {
    code = exit_unavailable;
    why = fmt::format("{} does not exist, so no control socket is configured; give one with -s PATH",
                      portico::escape_text(cli.config));
    return std::nullopt;
  }
  portico::Diagnostics errors(cli.config);
  const auto path = portico::read_control_socket(cli.config, errors);
  if (!path) {
    std::cerr << errors.to_string();
    code = exit_config;
    why = fmt::format("cannot read [daemon] control_socket from {}", portico::escape_text(cli.config));
    return std::nullopt;
  }
  if (path->empty()) {
    code = exit_unavailable;
    why = fmt::format("{} sets no [daemon] control_socket, so porticod listens on none (set it and restart "
                      "porticod, or give one with -s PATH)",
                      portico::escape_text(cli.config));
    return std::nullopt;
  }
  return path;
}

int connect_to(const std::string& path, int& code, std::string& why) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) {
    code = exit_usage;
    why = fmt::format("{}: too long for a Unix socket path", portico::escape_text(path));
    return -1;
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  // Non-blocking: a full backlog fails at once (EAGAIN) instead of hanging.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    code = exit_runtime;
    why = fmt::format("socket: {}", std::strerror(errno));
    return -1;
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    ::close(fd);
    if (error == EACCES || error == EPERM) {
      code = exit_denied;
      why = fmt::format("cannot connect to {}: {} (root and the members of the socket's group may)",
                        portico::escape_text(path), std::strerror(error));
    } else if (error == EAGAIN) {
      code = exit_unavailable;
      why = fmt::format("cannot connect to {}: porticod is busy (its control socket's queue is full); try again",
                        portico::escape_text(path));
    } else {
      code = exit_unavailable;
      why = fmt::format("cannot connect to {}: {} (is porticod running, with control_socket = \"{}\"?)",
                        portico::escape_text(path), std::strerror(error), portico::escape_text(path));
    }
    return -1;
  }
  return fd;
}

bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1'000'000)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

bool send_all(int fd, const std::string& data, Clock::time_point deadline) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, deadline)) return false;
    } else {
      return false;
    }
  }
  return true;
}

int run(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = parse_command_line(args);
  if (!parsed) {
    std::cerr << "porticoctl: " << portico::escape_controls(parsed.error().message())
              << "\nTry 'porticoctl --help' for more information.\n";
    return exit_usage;
  }
  Cli cli = std::move(*parsed);
  if (cli.help) {
    std::cout << usage();
    return exit_ok;
  }
  if (cli.version) {
    std::cout << "porticoctl " << portico::version() << "\n";
    return exit_ok;
  }
  const bool json = cli.request.json;
  // porticod reads diff's file from its own working directory.
  if (cli.request.command == "diff" && !cli.request.args.empty()) {
    std::error_code ec;
    const auto absolute = std::filesystem::absolute(cli.request.args[0], ec);
    if (!ec) cli.request.args[0] = absolute.string();
  }
  int code = exit_ok;
  std::string why;
  const auto path = socket_path(cli, code, why);
  if (!path) return failure(json, code, why);
  const int fd = connect_to(*path, code, why);
  if (fd < 0) return failure(json, code, why);

  // What the command itself may take: a drain's or an upgrade's timeout.
  const Duration own_time = cli.request.timeout.value_or(
      cli.request.command == "upgrade" ? default_upgrade_timeout : Duration(0));
  const auto deadline = Clock::now() + answer_time + own_time;
  // porticod may refuse a client (not authorised, busy) before reading its
  // request, and close: that answer is still there to read.
  int send_error = 0;
  if (!send_all(fd, format_request(cli.request) + "\n", deadline)) send_error = errno;
  const auto unreachable = [&](const std::string& why) {
    ::close(fd);
    if (send_error != 0) {
      return failure(json, exit_unavailable, fmt::format("cannot send to {}: {}", portico::escape_text(*path),
                                                         std::strerror(send_error)));
    }
    return failure(json, exit_unavailable, why);
  };
  // The answer: a status line, body lines, an empty line.
  std::string received;
  std::optional<Status> status;
  std::vector<std::string> body;
  bool complete = false;
  std::size_t taken = 0;
  while (!complete) {
    std::size_t newline;
    while (!complete && (newline = received.find('\n', taken)) != std::string::npos) {
      std::string line = received.substr(taken, newline - taken);
      taken = newline + 1;
      if (!status) {
        status = parse_status(line);
        if (!status) {
          ::close(fd);
          return failure(json, exit_unavailable,
                         fmt::format("{} answered something other than porticod's protocol: {}",
                                     portico::escape_text(*path), portico::quote_text(line)));
        }
      } else if (line.empty()) {
        complete = true;
      } else {
        body.push_back(line == " " ? std::string() : std::move(line));
      }
    }
    if (complete) break;
    char chunk[65536];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      received.append(chunk, static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLIN, deadline)) {
        const auto waited = std::chrono::duration_cast<std::chrono::seconds>(answer_time + own_time);
        return unreachable(fmt::format("no answer from porticod within {}s", waited.count()));
      }
    } else {
      if (status) break;  // an answer without its last empty line: take it
      return unreachable(n == 0 ? std::string("porticod closed the connection without answering")
                                : fmt::format("reading the answer: {}", std::strerror(errno)));
    }
  }
  ::close(fd);
  // Refused before porticod read the request, the answer has no JSON body.
  if (json && status->code != exit_ok && body.empty()) return failure(json, status->code, status->message);
  for (const auto& line : body) std::cout << line << "\n";
  std::cout.flush();
  if (status->code != exit_ok) std::cerr << "porticoctl: " << status->message << "\n";
  return status->code;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "porticoctl: " << portico::escape_controls(e.what()) << "\n";
    return exit_runtime;
  }
}
