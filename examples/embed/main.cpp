// How to embed portico: a program that serves a handler type of its own next
// to portico's built-in ones, from a configuration it carries as a string.
//
//   portico-embed [PORT]
//
// serves "shout" (reads a line, answers it in capitals, closes) on
// 127.0.0.1:PORT, any free port by default, and the built-in "echo" on
// another free port; prints "listening on ADDRESS (LISTENER)" on stdout for
// each; stops on SIGINT or SIGTERM, letting open connections finish.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <portico/portico.hpp>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A handler is built once per listener from that listener's options, and
// serve() runs as one coroutine per connection, written top to bottom like
// the blocking program it replaces. I/O errors are values, not exceptions:
// a client that goes away is an ordinary outcome.
class Shout final : public portico::Handler {
 public:
  explicit Shout(const portico::Options& options)
      : max_line_(static_cast<std::size_t>(options.integer("max_line"))),
        read_timeout_(options.duration("read_timeout")) {}

  asio::awaitable<void> serve(portico::Connection& conn) override {
    std::string line;
    char chunk[512];
    while (line.find('\n') == std::string::npos && line.size() < max_line_) {
      const std::size_t want = std::min(sizeof chunk, max_line_ - line.size());
      const portico::IoResult read = co_await conn.read_some(asio::buffer(chunk, want), read_timeout_);
      // EOF ends the line as a newline would; a timeout or a reset ends
      // the connection without an answer.
      if (read.ec == asio::error::eof) break;
      if (!read.ok()) co_return;
      line.append(chunk, read.bytes);
    }
    // Only the first line is answered; whatever followed it is dropped.
    if (const auto newline = line.find('\n'); newline != std::string::npos) line.resize(newline + 1);
    std::transform(line.begin(), line.end(), line.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    co_await conn.write(asio::buffer(line), read_timeout_);
    // Returning closes the connection.
  }

 private:
  std::size_t max_line_;
  portico::Duration read_timeout_;
};

// A handler type: a name, an options schema and a factory. portico checks a
// listener's options against the schema (with positions in the config
// text) before the factory ever runs, so the constructor above can take
// them as given.
portico::HandlerType shout_type() {
  return portico::HandlerType{
      .name = "shout",
      .doc = "read a line, answer it in capitals, close",
      .options =
          {
              {.name = "max_line",
               .type = portico::OptionType::integer,
               .default_value = std::int64_t{1024},
               .doc = "most bytes read before answering",
               .min = 1,
               .max = 65536},
              {.name = "read_timeout",
               .type = portico::OptionType::duration,
               .default_value = portico::Duration(10s),
               .doc = "how long the client has to send its line"},
          },
      .create = [](const portico::Options& options) { return std::make_unique<Shout>(options); },
  };
}

// The same TOML as porticod's configuration file, with the same validation.
// Port 0 asks the kernel for a free port; Server::listeners() reports it.
std::string config_text(std::uint16_t shout_port) {
  return fmt::format(R"([daemon]
shutdown_timeout = "2s"

[[listener]]
name = "shout"
address = "127.0.0.1:{}"
handler = "shout"
max_line = 256

[[listener]]
name = "echo"
address = "127.0.0.1:0"
handler = "echo"
)",
                     shout_port);
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  std::uint16_t port = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return port;
}

}  // namespace

int main(int argc, char** argv) {
  const auto port = argc == 2 ? parse_port(argv[1]) : std::optional<std::uint16_t>(0);
  if (argc > 2 || !port) {
    std::fprintf(stderr, "usage: portico-embed [PORT]\n");
    return 64;
  }
  // Asio's socket writes do not raise SIGPIPE, but built-in handlers that
  // talk to child processes write to pipes: a child that goes away must
  // cost an error code, not the process.
  std::signal(SIGPIPE, SIG_IGN);

  // The registry is filled before anything reads a config, and is read-only
  // from then on; it must outlive the server.
  portico::Registry registry;
  portico::register_builtin_handlers(registry);
  registry.add(shout_type());

  auto loaded = portico::parse_config(config_text(*port), "<embedded>", registry);
  if (!loaded.config) {
    // Every mistake at once, each as "<embedded>:LINE:COL: message".
    std::fputs(loaded.errors.to_string().c_str(), stderr);
    return 78;
  }
  const portico::Config& config = *loaded.config;

  // The server logs through the program's logger; stdout stays free for
  // the program's own output.
  auto log = std::make_shared<spdlog::logger>("embed", std::make_shared<spdlog::sinks::stderr_sink_mt>());

  // One thread runs every listener and connection; the concurrency hint
  // lets Asio skip the locking it would need for several.
  asio::io_context io(1);
  portico::Server server(io, registry, log);
  // Fallible calls return a portico::Result: the value, or an Error whose
  // message names what failed (here: the listener, its address, the OS
  // error).
  if (auto started = server.start(config); !started) {
    log->error("{}", started.error().message());
    return 1;
  }
  for (const auto& listener : server.listeners()) {
    fmt::print("listening on {} ({})\n", listener.address, listener.name);
  }
  // Whoever started the program may be waiting for these lines on a pipe.
  std::fflush(stdout);

  // A signal stops accepting and gives open connections the configured
  // grace time; the io_context then has nothing left to run.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    server.shutdown(config.daemon.shutdown_timeout, [&io] { io.stop(); });
  });
  io.run();
  return 0;
}
