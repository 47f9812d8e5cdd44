#include "options.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>

namespace po = boost::program_options;

namespace bench {

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::greeting: return "greeting";
    case Mode::echo: return "echo";
    case Mode::idle: return "idle";
    case Mode::stream: return "stream";
  }
  return "?";
}

namespace {

constexpr const char* kUsage =
    "Usage: portico-bench MODE --port N [options]\n"
    "\n"
    "Drives a TCP server on loopback or elsewhere and reports its rate, latency\n"
    "percentiles, errors by kind and this tool's own CPU time per operation.\n"
    "\n"
    "Modes:\n"
    "  greeting  each connection slot loops: connect, send --message, read to EOF,\n"
    "            compare with --expect, close (measures connections per second)\n"
    "  echo      persistent connections send --size bytes and read them back\n"
    "  idle      open --connections connections and hold them for --duration\n"
    "  stream    bulk bytes one way per --direction, in --size chunks (MB/s)\n"
    "\n"
    "--tls runs any mode over TLS 1.3 (TLS_AES_128_GCM_SHA256, X25519).\n"
    "\n"
    "Durations: 250ms, 5s, 2m, 1h.  Sizes: 1024, 64k, 1m.\n"
    "--message and --expect understand \\n \\r \\t \\0 \\\\ and \\xHH.\n"
    "\n"
    "Options";

template <class T>
bool parse_with(const std::string& text, const char* what, T (*parser)(std::string_view, std::string&),
                T& out, std::string& error) {
  std::string why;
  auto value = parser(text, why);
  if (!value) {
    error = fmt::format("--{}: {}", what, why);
    return false;
  }
  out = std::move(value);
  return true;
}

bool to_mode(const std::string& text, Mode& mode) {
  for (Mode m : {Mode::greeting, Mode::echo, Mode::idle, Mode::stream}) {
    if (text == mode_name(m)) {
      mode = m;
      return true;
    }
  }
  return false;
}

// Checks and converts the raw strings; returns false with `error` set.
bool finish(const po::variables_map& vm, Options& o, std::string& error) {
  if (!vm.count("mode")) {
    error = "missing MODE (greeting, echo, idle or stream)";
    return false;
  }
  if (!to_mode(vm["mode"].as<std::string>(), o.mode)) {
    error = fmt::format("unknown mode '{}' (use greeting, echo, idle or stream)", vm["mode"].as<std::string>());
    return false;
  }
  if (!vm.count("port")) {
    error = "--port is required";
    return false;
  }
  const int port = vm["port"].as<int>();
  if (port < 1 || port > 65535) {
    error = "--port must be between 1 and 65535";
    return false;
  }
  o.port = static_cast<std::uint16_t>(port);
  const int conns = vm["connections"].as<int>();
  if (conns < 1 || conns > 1'000'000) {
    error = "--connections must be between 1 and 1000000";
    return false;
  }
  o.connections = static_cast<unsigned>(conns);

  std::optional<Nanos> d;
  if (!parse_with(vm["duration"].as<std::string>(), "duration", parse_duration, d, error)) return false;
  o.duration = *d;
  if (!parse_with(vm["warmup"].as<std::string>(), "warmup", parse_duration, d, error)) return false;
  o.warmup = *d;
  if (!parse_with(vm["timeout"].as<std::string>(), "timeout", parse_duration, d, error)) return false;
  o.timeout = *d;
  if (o.duration <= Nanos::zero() || o.timeout <= Nanos::zero()) {
    error = "--duration and --timeout must be more than zero";
    return false;
  }

  std::optional<std::uint64_t> size;
  if (!parse_with(vm["size"].as<std::string>(), "size", parse_size, size, error)) return false;
  if (*size < 1 || *size > 64 * 1024 * 1024) {
    error = "--size must be between 1 byte and 64m";
    return false;
  }
  o.size = *size;

  std::optional<std::string> text;
  if (!parse_with(vm["message"].as<std::string>(), "message", unescape, text, error)) return false;
  o.message = *text;
  if (!parse_with(vm["expect"].as<std::string>(), "expect", unescape, text, error)) return false;
  o.expect = *text;

  if (vm.count("source-range")) {
    std::optional<SourceRange> range;
    if (!parse_with(vm["source-range"].as<std::string>(), "source-range", parse_source_range, range, error))
      return false;
    o.source_range = range;
  }

  const auto& dir = vm["direction"].as<std::string>();
  if (dir == "up") o.direction = Direction::up;
  else if (dir == "down") o.direction = Direction::down;
  else {
    error = "--direction must be up or down";
    return false;
  }
  o.host = vm["host"].as<std::string>();
  o.json = vm.count("json") > 0;
  if (vm.count("server-pid")) {
    // Repeated, or a comma list, or both: one list, each pid once.
    std::string all;
    for (const auto& item : vm["server-pid"].as<std::vector<std::string>>()) all += (all.empty() ? "" : ",") + item;
    std::optional<std::vector<int>> pids;
    if (!parse_with(all, "server-pid", parse_pid_list, pids, error)) return false;
    o.server_pids = *pids;
  }

  const long long trips = vm["round-trips"].as<long long>();
  if (trips < 0) {
    error = "--round-trips must be 0 (never reconnect) or more";
    return false;
  }
  if (trips > 0 && o.mode != Mode::echo) {
    error = "--round-trips is for echo only";
    return false;
  }
  o.round_trips = static_cast<std::uint64_t>(trips);

  o.tls = vm.count("tls") > 0;
  o.tls_resume = vm.count("tls-resume") > 0;
  if (vm.count("tls-ca")) o.tls_ca = vm["tls-ca"].as<std::string>();
  if (!o.tls && (o.tls_resume || vm.count("tls-ca"))) {
    error = o.tls_resume ? "--tls-resume needs --tls" : "--tls-ca needs --tls";
    return false;
  }
  if (vm.count("tls-ca") && o.tls_ca.empty()) {
    error = "--tls-ca needs a file name";
    return false;
  }
  return true;
}

}  // namespace

ParseOutcome parse_options(int argc, char** argv, Options& o, std::string& error, std::ostream& out) {
  po::options_description visible(kUsage, 80, 40);
  // Defaults are given as text so --help shows them in the syntax users type.
  visible.add_options()
    ("host", po::value<std::string>()->value_name("HOST")->default_value("127.0.0.1"), "server address or name")
    ("port,p", po::value<int>()->value_name("N"), "server port (required)")
    ("connections,c", po::value<int>()->value_name("N")->default_value(50), "concurrent connections (slots)")
    ("duration,d", po::value<std::string>()->value_name("TIME")->default_value("5s"), "measured time (idle: hold time)")
    ("warmup,w", po::value<std::string>()->value_name("TIME")->default_value("1s"), "unmeasured time before it (not idle)")
    ("timeout", po::value<std::string>()->value_name("TIME")->default_value("5s"), "give up on one operation after this")
    ("size,s", po::value<std::string>()->value_name("BYTES")->default_value("1024"), "echo payload / stream chunk size")
    ("message,m", po::value<std::string>()->value_name("TEXT")->default_value("GET request\\n"), "what greeting sends")
    ("expect,e", po::value<std::string>()->value_name("TEXT")->default_value("Hello from server!\\n"),
     "the greeting reply to check\n('' accepts any)")
    ("direction", po::value<std::string>()->value_name("up|down")->default_value("up"), "stream: up (we send) or down (we read)")
    ("source-range", po::value<std::string>()->value_name("FIRST-LAST"),
     "bind to these source addresses in turn\n(idle default: 127.0.0.1-127.0.0.254)")
    ("server-pid", po::value<std::vector<std::string>>()->value_name("PID[,PID]")->composing(),
     "also report the server's CPU per op and RSS;\nseveral processes (repeat, or a comma list)\nare summed")
    ("round-trips", po::value<long long>()->value_name("N")->default_value(0),
     "echo: reconnect after N round trips\n(0: never)")
    ("tls", "speak TLS 1.3 on every connection")
    ("tls-resume", "with --tls: each slot resumes with the\nnewest session ticket it was given")
    ("tls-ca", po::value<std::string>()->value_name("FILE"),
     "with --tls: verify the server's chain\nagainst these CA certificates (default:\nno verification)")
    ("json", "print one JSON object instead of text")
    ("help,h", "show this help")
    ("version,V", "show the version");
  po::options_description hidden;
  hidden.add_options()("mode", po::value<std::string>());
  po::options_description all;
  all.add(visible).add(hidden);
  po::positional_options_description positional;
  positional.add("mode", 1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    error = e.what();
    return ParseOutcome::usage_error;
  }
  if (vm.count("help")) {
    out << visible << '\n';
    return ParseOutcome::help;
  }
  if (vm.count("version")) {
    out << "portico-bench " << PORTICO_BENCH_VERSION << '\n';
    return ParseOutcome::version;
  }
  return finish(vm, o, error) ? ParseOutcome::run : ParseOutcome::usage_error;
}

}  // namespace bench
