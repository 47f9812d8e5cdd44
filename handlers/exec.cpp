#include "exec.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include <portico/connection.hpp>
#include <portico/io.hpp>
#include <portico/log_throttle.hpp>
#include <portico/text.hpp>
#include <portico/metrics.hpp>

#include "child_process.hpp"
#include "exec_command.hpp"
#include "relay.hpp"

namespace portico::handlers {

namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using boost::system::error_code;
using clock = std::chrono::steady_clock;
using spdlog::level::debug;
using spdlog::level::info;
using spdlog::level::warn;

// How long a child has to exit after SIGTERM before SIGKILL.
constexpr auto kill_grace = std::chrono::seconds(2);
// A stderr line longer than this is logged in pieces.
constexpr std::size_t max_line = 1024;

// Variables porticod sets itself; the config cannot override them.
constexpr std::array<std::string_view, 10> ucspi_variables = {
    "PROTO",        "TCPREMOTEIP", "TCPREMOTEPORT",          "TCPLOCALIP",         "TCPLOCALPORT",
    "SSL_PROTOCOL", "SSL_CIPHER",  "SSL_TLS_SNI_SERVERNAME", "SSL_PEER_CERT_HASH", "SSL_PEER_CERT_SUBJECT"};

// A stderr line as it goes into the log: control bytes escaped, so that a
// program cannot forge log lines or send escape sequences to a terminal.
std::string printable(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (const unsigned char c : line) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string elapsed_since(clock::time_point start) {
  return format_duration(std::chrono::duration_cast<Duration>(clock::now() - start));
}

// What an exec listener counts, shared by the handlers a reload builds for
// it (take_over), so that the metrics go on and max_instances counts the
// children the previous handler still runs.
struct ExecCounters {
  std::size_t running = 0;  // one io_context thread: no atomics
  std::uint64_t spawned = 0;
  std::uint64_t spawn_failures = 0;
  std::uint64_t limit_reached = 0;
  std::map<std::string, std::uint64_t, std::less<>> exits;  // by ExitStatus::label()
};

// Counts a running child out whichever way serve() ends.
struct Release {
  std::size_t& running;
  ~Release() { --running; }
};

// One connection's child: its stop request and the timer that carries it.
struct Supervision {
  explicit Supervision(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;
  bool stop_requested = false;
};

class Exec final : public Handler {
 public:
  explicit Exec(const Options& options)
      : max_instances_(static_cast<std::size_t>(options.integer("max_instances"))),
        timeout_(options.duration("timeout")),
        log_stderr_(options.string("stderr") == "log") {
    std::vector<CommandProblem> problems;
    command_ = resolve_command(options, problems);
    // validate() reported these already; a library user may skip it.
    if (!problems.empty()) throw std::invalid_argument(problems.front().message);
    for (const auto& [key, value] : options.string_table("env")) base_environment_.push_back(key + "=" + value);
  }

  asio::awaitable<void> serve(Connection& conn) override {
    // Held by the frame: a reload may replace this handler meanwhile.
    const auto counters = counters_;
    if (max_instances_ > 0 && counters->running >= max_instances_) {
      ++counters->limit_reached;
      conn.log_throttled(full_log_, warn, "max_instances ({}) reached: closing the connection", max_instances_);
      co_return;
    }
    Launch launched;
    if (!launch(conn, launched)) {
      ++counters->spawn_failures;
      co_return;
    }
    ChildProcess& child = *launched.child;

    ++counters->spawned;
    ++counters->running;
    const Release release{counters->running};
    const auto started = clock::now();
    Supervision supervision(conn.executor());
    conn.on_close([&supervision] {
      supervision.stop_requested = true;
      supervision.timer.cancel();
    });
    conn.log(debug, "exec pid {} started: {}", child.pid(), command_.path);
    if (conn.annotating()) conn.annotate("pid", std::to_string(child.pid()));
    const ExitStatus status = co_await run(conn, child, supervision, launched.err_reader ? &*launched.err_reader : nullptr,
                                           launched.relayed ? &*launched.relayed : nullptr);
    const std::string label = status.label();
    if (conn.annotating()) conn.annotate("exit", label);
    if (const auto it = counters->exits.find(label); it != counters->exits.end()) {
      ++it->second;
    } else {
      counters->exits.emplace(label, 1);
    }
    const bool clean = status.signal == 0 && status.code == 0;
    conn.log(clean ? debug : info, "exec pid {} {} after {}", child.pid(), status.to_string(), elapsed_since(started));
  }

  void take_over(Handler& previous) override { counters_ = static_cast<Exec&>(previous).counters_; }

  void write_metrics(MetricsWriter& out, std::string_view listener) const override {
    const ExecCounters& c = *counters_;
    out.counter("portico_exec_spawned_total", "Programs started", {{"listener", listener}},
                static_cast<double>(c.spawned));
    out.counter("portico_exec_spawn_failures_total", "Programs that could not be started", {{"listener", listener}},
                static_cast<double>(c.spawn_failures));
    out.counter("portico_exec_max_instances_reached_total", "Connections closed at once: max_instances were running",
                {{"listener", listener}}, static_cast<double>(c.limit_reached));
    out.gauge("portico_exec_running", "Programs running now", {{"listener", listener}},
              static_cast<double>(c.running));
    // status="0" is always there, so that a rate of failures has a base.
    if (!c.exits.contains("0")) {
      out.counter("portico_exec_exits_total", "Programs that ended, by exit status or signal",
                  {{"listener", listener}, {"status", "0"}}, 0);
    }
    for (const auto& [status, count] : c.exits) {
      out.counter("portico_exec_exits_total", "Programs that ended, by exit status or signal",
                  {{"listener", listener}, {"status", status}}, static_cast<double>(count));
    }
  }

 private:
  // A started program and what serve() keeps for it.
  struct Launch {
    std::optional<asio::posix::stream_descriptor> err_reader;  // its stderr, when logged
    std::optional<Stream> relayed;  // over TLS: our end of its socket pair
    std::optional<ChildProcess> child;
  };

  // Starts the program for `conn`; false (and logged) when it cannot be.
  bool launch(Connection& conn, Launch& out) const {
    const auto executor = conn.executor();
    int err_pipe[2] = {-1, -1};
    if (log_stderr_ && ::pipe2(err_pipe, O_CLOEXEC) != 0) {
      conn.log(warn, "cannot start {}: pipe: {}", command_.path, std::strerror(errno));
      return false;
    }
    if (log_stderr_) {
      out.err_reader.emplace(executor, err_pipe[0]);
      error_code ignored;
      out.err_reader->non_blocking(true, ignored);
    }
    // Over TLS the program cannot have the socket, whose bytes are
    // encrypted: it gets one end of a socket pair, and the connection's
    // plain bytes are relayed to and from the other.
    int child_socket = conn.share_descriptor();
    if (child_socket < 0) {
      int pair[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        conn.log(warn, "cannot start {}: socketpair: {}", command_.path, std::strerror(errno));
        if (err_pipe[1] >= 0) ::close(err_pipe[1]);
        return false;
      }
      Stream::socket_type ours(executor);
      error_code ec;
      ours.assign(Stream::socket_type::protocol_type(AF_UNIX, 0), pair[0], ec);
      out.relayed.emplace(std::move(ours));
      child_socket = pair[1];
    }
    try {
      out.child.emplace(executor, command_, environment(conn), child_socket, err_pipe[1]);
    } catch (const std::system_error& e) {
      conn.log(warn, "cannot start {}: {}", command_.path, e.what());
    }
    if (err_pipe[1] >= 0) ::close(err_pipe[1]);
    if (out.relayed) ::close(child_socket);
    if (!out.child) return false;
    // The program has the connection now: the daemon's copy goes, so that
    // the client sees the end exactly when the program closes it.
    if (!out.relayed) conn.close();
    return true;
  }

  // Relays the connection to the program's socket until the program has
  // closed its side (its output ended): then the client gets the end too.
  // Returns how many bytes went each way.
  static asio::awaitable<RelayResult> pass(Connection& conn, Stream& program) {
    return relay(conn, program, RelayEnd::when_upstream_ends);
  }

  // Supervises the child until it exits, logging its stderr (`err`) and
  // relaying the connection to it (`relayed`) meanwhile, when there are.
  asio::awaitable<ExitStatus> run(Connection& conn, ChildProcess& child, Supervision& supervision,
                                  asio::posix::stream_descriptor* err, Stream* relayed) {
    if (relayed && err) {
      auto [status, relay_result] = co_await (supervise(conn, child, supervision, err) &&
                                              log_stderr(conn, child.pid(), *err) && pass(conn, *relayed));
      co_return status;
    }
    if (relayed) {
      auto [status, relay_result] = co_await (supervise(conn, child, supervision, nullptr) && pass(conn, *relayed));
      co_return status;
    }
    if (err) co_return co_await (supervise(conn, child, supervision, err) && log_stderr(conn, child.pid(), *err));
    co_return co_await supervise(conn, child, supervision, nullptr);
  }

  // Waits for the child to exit; on the timeout or a stop request sends
  // SIGTERM, and SIGKILL kill_grace later. Then ends the stderr reader,
  // which a grandchild holding the pipe open could otherwise keep waiting.
  asio::awaitable<ExitStatus> supervise(Connection& conn, ChildProcess& child, Supervision& s,
                                        asio::posix::stream_descriptor* err_reader) {
    enum class Phase { running, terminating, killing };
    Phase phase = Phase::running;
    const auto started = clock::now();
    const auto timeout_at = timeout_.count() > 0 ? started + timeout_ : clock::time_point::max();
    auto kill_at = clock::time_point::max();
    std::optional<ExitStatus> status;
    while (!status) {
      auto due = clock::time_point::max();
      if (phase == Phase::running) due = s.stop_requested ? clock::now() : timeout_at;
      if (phase == Phase::terminating) due = kill_at;
      s.timer.expires_at(due);
      auto result = co_await (child.wait() || s.timer.async_wait(use_tuple));
      if (result.index() == 0) {
        status = std::get<0>(result);
        continue;
      }
      const auto now = clock::now();
      if (phase == Phase::running && (s.stop_requested || now >= timeout_at)) {
        conn.log(info, "exec pid {} {}: sending SIGTERM", child.pid(),
                 s.stop_requested ? "stopped by the server"
                                  : fmt::format("timed out after {}", format_duration(timeout_)));
        child.signal(SIGTERM);
        phase = Phase::terminating;
        kill_at = now + kill_grace;
      } else if (phase == Phase::terminating && now >= kill_at) {
        conn.log(warn, "exec pid {} still running {} after SIGTERM: sending SIGKILL", child.pid(),
                 format_duration(kill_grace));
        child.signal(SIGKILL);
        phase = Phase::killing;
      }
    }
    if (err_reader != nullptr) {
      error_code ignored;
      err_reader->cancel(ignored);
    }
    co_return *status;
  }

  // Logs what the child writes to stderr, a line at a time, until the pipe
  // ends or supervise() cancels the wait; what was in the pipe by then is
  // still logged.
  asio::awaitable<void> log_stderr(Connection& conn, pid_t pid, asio::posix::stream_descriptor& pipe) {
    std::string pending;
    const auto emit = [&](std::string_view line) {
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      conn.log(warn, "exec pid {} stderr: {}", pid, printable(line));
    };
    // Reads what is there; false at EOF or on an error.
    const auto read_available = [&] {
      std::array<char, 4096> chunk;
      for (;;) {
        error_code ec;
        const std::size_t n = pipe.read_some(asio::buffer(chunk), ec);
        if (ec) return ec == asio::error::would_block || ec == asio::error::try_again;
        pending.append(chunk.data(), n);
        std::size_t start = 0;
        for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
          emit(std::string_view(pending).substr(start, nl - start));
        }
        pending.erase(0, start);
        while (pending.size() >= max_line) {
          emit(std::string_view(pending).substr(0, max_line));
          pending.erase(0, max_line);
        }
      }
    };
    while (read_available()) {
      auto [ec] = co_await pipe.async_wait(asio::posix::stream_descriptor::wait_read, use_tuple);
      if (ec) {
        read_available();
        break;
      }
    }
    if (!pending.empty()) emit(pending);
  }

  // Only the configured variables and the UCSPI ones: nothing of the
  // daemon's own environment reaches the program.
  std::vector<std::string> environment(const Connection& conn) const {
    std::vector<std::string> env = base_environment_;
    const Endpoint& local = conn.local();
    if (local.is_unix) {
      env.emplace_back("PROTO=UNIX");
      return env;
    }
    env.emplace_back("PROTO=TCP");
    if (!conn.peer().is_unix) {
      env.push_back("TCPREMOTEIP=" + conn.peer().ip.to_string());
      env.push_back("TCPREMOTEPORT=" + std::to_string(conn.peer().port));
    }
    env.push_back("TCPLOCALIP=" + local.ip.to_string());
    env.push_back("TCPLOCALPORT=" + std::to_string(local.port));
    // UCSPI-TLS, as s6-tlsd sets it for the program it runs.
    if (const TlsInfo* tls = conn.tls()) {
      env.push_back("SSL_PROTOCOL=" + tls->protocol);
      env.push_back("SSL_CIPHER=" + tls->cipher);
      if (!tls->server_name.empty()) env.push_back("SSL_TLS_SNI_SERVERNAME=" + tls->server_name);
      if (!tls->peer_hash.empty()) env.push_back("SSL_PEER_CERT_HASH=" + tls->peer_hash);
      if (!tls->peer_subject.empty()) env.push_back("SSL_PEER_CERT_SUBJECT=" + tls->peer_subject);
    }
    return env;
  }

  Command command_;
  std::vector<std::string> base_environment_;
  std::size_t max_instances_;
  Duration timeout_;
  bool log_stderr_;
  std::shared_ptr<ExecCounters> counters_ = std::make_shared<ExecCounters>();
  LogThrottle full_log_;
};

void validate(const Options& options, Diagnostics& errors) {
  std::vector<CommandProblem> problems;
  resolve_command(options, problems);
  for (const auto& p : problems) errors.error(options.position(p.option), p.message);
  for (const auto& [key, value] : options.string_table("env")) {
    if (key.empty() || key.find('=') != std::string::npos) {
      errors.error(options.position("env"), fmt::format("\"env\" key \"{}\" is not a variable name", key));
    } else if (std::find(ucspi_variables.begin(), ucspi_variables.end(), key) != ucspi_variables.end()) {
      errors.error(options.position("env"), fmt::format("\"env\" cannot set {}: porticod sets it for each connection", key));
    }
  }
}

// Runs nothing: a connection would start the program, with whatever it
// does. Checks that the program is still there and executable, as the
// start would find it.
asio::awaitable<Result<std::string>> probe(const ProbeTarget& target) {
  const StringList& argv = target.options.string_list("command");
  if (argv.empty()) co_return fail("\"command\" is empty");
  const char* path = std::getenv("PATH");
  const auto program = find_executable(argv[0], path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  if (!program) co_return program.error();
  co_return fmt::format("program {} is executable (not run)", quote_text(*program));
}

}  // namespace

HandlerType exec_type() {
  using namespace std::chrono_literals;
  return HandlerType{
      .name = "exec",
      .doc = "run a program for each connection, the connection as its stdin and stdout (inetd nowait)",
      .options =
          {
              {.name = "command",
               .type = OptionType::string_list,
               .default_value = std::nullopt,  // required
               .doc = "program and arguments, run directly (no shell); an absolute path or a name looked up in PATH"},
              {.name = "user",
               .type = OptionType::string,
               .default_value = std::string(),
               .doc = "run the program as this user (porticod must run as root); empty: as porticod",
               .needs_root = true},
              {.name = "group",
               .type = OptionType::string,
               .default_value = std::string(),
               .doc = "run the program with this group; empty: the user's",
               .needs_root = true},
              {.name = "max_instances",
               .type = OptionType::integer,
               .default_value = std::int64_t{0},
               .doc = "most programs running at once; further connections are closed at once; 0: no limit",
               .min = 0,
               .max = 1'000'000},
              {.name = "timeout",
               .type = OptionType::duration,
               .default_value = Duration(0s),
               .doc = "how long a program may run before SIGTERM (then SIGKILL 2s later); 0s: no limit"},
              {.name = "stderr",
               .type = OptionType::string,
               .default_value = std::string("log"),
               .doc = "the program's stderr: logged line by line, or discarded",
               .choices = {"log", "null"}},
              {.name = "env",
               .type = OptionType::string_table,
               .default_value = StringTable{},
               .doc = "environment variables for the program, besides PROTO and the TCP* ones"},
          },
      .create = [](const Options& options) { return std::make_unique<Exec>(options); },
      .validate = validate,
      .probe = probe,
  };
}

}  // namespace portico::handlers
