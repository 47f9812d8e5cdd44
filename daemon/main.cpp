// porticod: the command line around portico's library; the daemon's life is
// in Runtime.

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <set>
#include <string>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <portico/config.hpp>
#include <portico/plugin.hpp>
#include <portico/registry.hpp>
#include <portico/text.hpp>
#include <portico/version.hpp>

#include "daemon/exit_codes.hpp"
#include "daemon/log_setup.hpp"
#include "daemon/runtime.hpp"

namespace po = boost::program_options;

namespace {

using portico::exit_config;
using portico::exit_ok;
using portico::exit_runtime;
using portico::exit_usage;

constexpr const char* default_config_path = "/etc/portico/portico.toml";

struct Cli {
  std::string config_path = default_config_path;
  bool config_given = false;
  bool check = false;
  bool print_config = false;
  bool list_handlers = false;
  std::optional<portico::LogLevel> log_level;
};

po::options_description describe_options() {
  po::options_description options("Options");
  options.add_options()
      ("config,c", po::value<std::string>()->value_name("FILE"),
       "configuration file (default /etc/portico/portico.toml; when that file does not exist, the embedded default "
       "config serves the greeting on 127.0.0.1:8888)")
      ("check,t", "validate the configuration and exit")
      ("print-config", "print the effective configuration, defaults filled in, as TOML and exit")
      ("list-handlers", "list every handler type with its options and exit (with -c, the config's plugins too)")
      ("log-level,l", po::value<std::string>()->value_name("LEVEL"),
       "log level, overriding the file: trace, debug, info, warn, error, critical, off")
      ("version,V", "print the version and exit")
      ("help,h", "print this help and exit");
  return options;
}

void print_usage(std::ostream& out, const po::options_description& options) {
  out << "Usage: porticod [OPTIONS]\n"
         "Serve TCP connections with the handlers named in a TOML configuration.\n\n"
      << options << "\nExit status: 0 success, 1 runtime failure, 64 usage error, 78 configuration error.\n"
      << "Signals: TERM/INT drain and stop, HUP reloads the configuration, USR1 reopens the log file.\n"
      << "See porticod(8) and portico.toml(5).\n";
}

// Returns an exit code when the command line alone decides the outcome.
std::optional<int> parse_command_line(int argc, char** argv, Cli& cli) {
  const auto options = describe_options();
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(options).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "porticod: " << portico::escape_controls(e.what())
              << "\nTry 'porticod --help' for more information.\n";
    return exit_usage;
  }
  if (vm.count("help")) {
    print_usage(std::cout, options);
    return exit_ok;
  }
  if (vm.count("version")) {
    std::cout << "porticod " << portico::version() << "\n";
    return exit_ok;
  }
  if (vm.count("config")) {
    cli.config_path = vm["config"].as<std::string>();
    cli.config_given = true;
  }
  cli.check = vm.count("check") > 0;
  cli.print_config = vm.count("print-config") > 0;
  cli.list_handlers = vm.count("list-handlers") > 0;
  if (vm.count("log-level")) {
    cli.log_level = portico::parse_log_level(vm["log-level"].as<std::string>());
    if (!cli.log_level) {
      std::cerr << "porticod: invalid log level '" << portico::escape_text(vm["log-level"].as<std::string>())
                << "': expected trace, debug, info, warn, error, critical or off\n";
      return exit_usage;
    }
  }
  return std::nullopt;
}

int report(const portico::Diagnostics& errors) {
  std::cerr << errors.to_string();
  std::cerr << fmt::format("porticod: {} error(s) in {}\n", errors.size(), portico::escape_text(errors.file()));
  return exit_config;
}

int run(int argc, char** argv) {
  Cli cli;
  if (auto code = parse_command_line(argc, argv, cli)) return *code;

  portico::Registry registry;
  portico::register_builtin_handlers(registry);
  if (cli.list_handlers && !cli.config_given) {
    std::cout << registry.describe();
    return exit_ok;
  }

  auto log = portico::make_daemon_logger();
  portico::set_log_level(*log, cli.log_level.value_or(portico::LogLevel::info));

  // Plugins load once per path: a reload that lists one again reuses it.
  std::set<std::string> loaded_plugins;
  portico::ConfigSource source;
  source.load_plugin = [&registry, &loaded_plugins](const std::string& path) -> portico::Result<void> {
    if (loaded_plugins.contains(path)) return {};
    auto loaded = portico::load_plugin(registry, path);
    if (loaded) loaded_plugins.insert(path);
    return loaded;
  };
  source.plugin_loaded = [&loaded_plugins](const std::string& path) { return loaded_plugins.contains(path); };
  const bool use_embedded = !cli.config_given && access(cli.config_path.c_str(), F_OK) != 0 && errno == ENOENT;
  if (!use_embedded) source.path = cli.config_path;

  auto loaded = source.load(registry);
  // Warnings (a certificate that expires soon) go to the terminal for
  // --check and --print-config, to the log when serving.
  const bool to_terminal = cli.check || cli.print_config || cli.list_handlers;
  for (const auto& warning : loaded.errors.warnings()) {
    if (to_terminal) {
      std::cerr << warning.to_string() << '\n';
    } else {
      log->warn("{}", warning.to_string());
    }
  }
  if (!loaded.config) return report(loaded.errors);
  const portico::Config& config = *loaded.config;
  if (cli.list_handlers) {
    std::cout << registry.describe();
    return exit_ok;
  }
  // What a start would stumble on before binding, --check says too.
  if (!cli.print_config) {
    if (const auto host = portico::check_host(config); !host.empty()) return report(host);
  }
  if (cli.check) {
    std::cout << fmt::format("{}: configuration OK ({} listener(s))\n", portico::escape_text(config.source),
                             config.listeners.size());
    return exit_ok;
  }
  if (cli.print_config) {
    std::cout << portico::print_config(config, registry);
    return exit_ok;
  }

  portico::set_log_level(*log, cli.log_level.value_or(config.daemon.log_level));
  if (use_embedded) {
    log->info("no configuration file at {}: running the embedded default configuration",
              portico::escape_text(cli.config_path));
  }
  portico::Runtime runtime(registry, log, std::move(source), cli.log_level, std::vector<std::string>(argv, argv + argc));
  return runtime.run(config);
}

}  // namespace

int main(int argc, char** argv) {
  // A client that goes away mid-write must cost an error code, not the
  // process.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "porticod: fatal: %s\n", portico::escape_controls(e.what()).c_str());
    return exit_runtime;
  }
}
