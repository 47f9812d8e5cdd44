#include "ctl/cli.hpp"

#include <fmt/format.h>

#include <portico/text.hpp>

namespace portico::control {

namespace {

// The value of an option written "--name VALUE", "--name=VALUE" or
// "-n VALUE"; `i` moves past what it took.
Result<std::string> option_value(const std::vector<std::string>& args, std::size_t& i, std::string_view name) {
  const std::string& word = args[i];
  if (const auto equals = word.find('='); word.starts_with("--") && equals != std::string::npos) {
    return word.substr(equals + 1);
  }
  if (i + 1 >= args.size()) return fail("{} needs a value", name);
  return args[++i];
}

bool is(const std::string& word, std::string_view short_name, std::string_view long_name) {
  return word == short_name || word == long_name || (word.starts_with(long_name) && word.size() > long_name.size() &&
                                                     word[long_name.size()] == '=');
}

}  // namespace

Result<Cli> parse_command_line(const std::vector<std::string>& args) {
  Cli cli;
  bool have_command = false;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    const bool option = !options_done && word.size() > 1 && word.front() == '-';
    if (!option) {
      if (!have_command) {
        cli.request.command = word;
        have_command = true;
      } else {
        cli.request.args.push_back(word);
      }
      continue;
    }
    if (word == "--") {
      options_done = true;
    } else if (word == "--json") {
      cli.request.json = true;
    } else if (word == "-h" || word == "--help") {
      cli.help = true;
    } else if (word == "-V" || word == "--version") {
      cli.version = true;
    } else if (is(word, "-s", "--socket")) {
      auto value = option_value(args, i, "--socket");
      if (!value) return value.error();
      if (value->empty()) return fail("--socket needs a path");
      cli.socket = std::move(*value);
    } else if (is(word, "-c", "--config")) {
      auto value = option_value(args, i, "--config");
      if (!value) return value.error();
      if (value->empty()) return fail("{} needs a file", have_command ? "diff -c" : "--config");
      // After `diff`, the file to compare; before any command, where the
      // control socket is configured.
      if (have_command && cli.request.command == "diff") {
        cli.request.args.push_back(std::move(*value));
      } else if (have_command) {
        return fail("{} takes no -c; write it before the command", quote_text(cli.request.command));
      } else {
        cli.config = std::move(*value);
      }
    } else if (is(word, "", "--timeout")) {
      auto value = option_value(args, i, "--timeout");
      if (!value) return value.error();
      const auto timeout = parse_duration(*value);
      if (!timeout) return fail("--timeout {}: {}", quote_text(*value), timeout.error().message());
      cli.request.timeout = *timeout;
    } else {
      return fail("unknown option {}", quote_text(word));
    }
  }
  if (cli.help || cli.version) return cli;
  if (!have_command) return fail("no command given");
  if (auto checked = check_request(cli.request); !checked) return checked.error();
  return cli;
}

std::string usage() {
  std::string text =
      "Usage: porticoctl [-s PATH] [-c FILE] [--json] COMMAND [ARGUMENTS]\n"
      "Ask a running porticod over its control socket.\n\n"
      "Options:\n"
      "  -s, --socket PATH  the control socket (default: [daemon] control_socket of the config file)\n"
      "  -c, --config FILE  the config file naming the socket (default /etc/portico/portico.toml)\n"
      "      --json         answer in JSON, for scripts\n"
      "  -V, --version      print the version and exit\n"
      "  -h, --help         print this help and exit\n\n"
      "Commands:\n";
  for (const auto& line : command_synopsis()) text += "  " + line + "\n";
  text +=
      "  (diff also takes -c FILE)\n\n"
      "Exit status: 0 success, 1 the command failed, 64 usage error, 69 porticod not reachable,\n"
      "75 an upgrade is in progress, 77 permission denied, 78 configuration error. See porticoctl(8).\n";
  return text;
}

}  // namespace portico::control
