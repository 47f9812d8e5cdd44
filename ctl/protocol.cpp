#include "ctl/protocol.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include <portico/text.hpp>

namespace portico::control {

namespace {

struct CommandSpec {
  std::string_view name;
  std::size_t min_args;
  std::size_t max_args;
  bool takes_timeout;
  std::string_view synopsis;
};

constexpr std::array<CommandSpec, 10> commands = {{
    {"status", 0, 0, false, "status                          version, uptime, configuration, each listener's state"},
    {"connections", 0, 1, false, "connections [LISTENER]          the open connections"},
    {"reload", 0, 0, false, "reload                          re-read the configuration: its errors, or what changed"},
    {"diff", 0, 1, false, "diff [FILE]                     what a reload of FILE (default: the running one's) would change"},
    {"disable", 1, 1, false, "disable LISTENER                stop accepting on it; clients wait in its backlog"},
    {"enable", 1, 1, false, "enable LISTENER                 accept on it again"},
    {"drain", 1, 1, true, "drain LISTENER [--timeout 30s]  disable, wait for its connections to end, cut the rest"},
    {"probe", 0, 1, false, "probe [LISTENER]                check that each listener answers as its handler should"},
    {"upgrade", 0, 0, true, "upgrade [--timeout 30s]         start porticod's binary again; it takes over once it serves"},
    {"help", 0, 0, false, "help                            this list"},
}};

const CommandSpec* find_command(std::string_view name) {
  for (const auto& spec : commands) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

struct Word {
  std::string text;
  bool quoted = false;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// A quoted word from just after its opening quote; `i` ends after the
// closing one.
Result<std::string> unquote(std::string_view line, std::size_t& i) {
  std::string out;
  while (i < line.size()) {
    const char c = line[i++];
    if (c == '"') return out;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (i >= line.size()) break;
    const char e = line[i++];
    switch (e) {
      case '\\': out += '\\'; continue;
      case '"': out += '"'; continue;
      case 'n': out += '\n'; continue;
      case 'r': out += '\r'; continue;
      case 't': out += '\t'; continue;
      case 'x':
      case 'u': {
        const std::size_t digits = e == 'x' ? 2 : 4;
        char32_t value = 0;
        for (std::size_t d = 0; d < digits; ++d) {
          const int h = i < line.size() ? hex_value(line[i]) : -1;
          if (h < 0) return fail("\\{} in a quoted word needs {} hexadecimal digits", e, digits);
          value = value * 16 + static_cast<char32_t>(h);
          ++i;
        }
        if (e == 'x') {
          out += static_cast<char>(value);
        } else {
          append_utf8(out, value);
        }
        continue;
      }
      default:
        return fail("unknown escape {} in a quoted word", quote_text(std::string{'\\', e}));
    }
  }
  return fail("a quoted word does not end (no closing \")");
}

Result<std::vector<Word>> split(std::string_view line) {
  std::vector<Word> words;
  std::size_t i = 0;
  for (;;) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    if (line[i] == '"') {
      ++i;
      auto text = unquote(line, i);
      if (!text) return text.error();
      if (i < line.size() && line[i] != ' ' && line[i] != '\t') return fail("a space must follow a quoted word");
      words.push_back({std::move(*text), true});
      continue;
    }
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    words.push_back({std::string(line.substr(start, i - start)), false});
  }
  return words;
}

bool needs_quotes(std::string_view word) {
  if (word.empty() || word.starts_with("--")) return true;
  for (const char c : word) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '\\' || u >= 0x80) return true;
  }
  return false;
}

}  // namespace

const std::vector<std::string>& command_synopsis() {
  static const std::vector<std::string> lines = [] {
    std::vector<std::string> out;
    for (const auto& spec : commands) out.emplace_back(spec.synopsis);
    return out;
  }();
  return lines;
}

Result<std::vector<std::string>> split_words(std::string_view line) {
  auto words = split(line);
  if (!words) return words.error();
  std::vector<std::string> out;
  for (auto& w : *words) out.push_back(std::move(w.text));
  return out;
}

std::string quote_word(std::string_view word) { return needs_quotes(word) ? quote_text(word) : std::string(word); }

Result<void> check_request(const Request& request) {
  const CommandSpec* spec = find_command(request.command);
  if (spec == nullptr) return fail("unknown command {}; try \"help\"", quote_text(request.command));
  if (request.args.size() < spec->min_args || request.args.size() > spec->max_args) {
    const std::string_view synopsis = spec->synopsis.substr(0, spec->synopsis.find("  "));
    return fail("{} takes {} argument{}: {}", spec->name,
                spec->min_args == spec->max_args ? fmt::format("{}", spec->min_args)
                                                 : fmt::format("{} or {}", spec->min_args, spec->max_args),
                spec->max_args == 1 ? "" : "s", synopsis);
  }
  if (request.timeout && !spec->takes_timeout) return fail("{} takes no --timeout", spec->name);
  if (request.timeout && request.timeout->count() <= 0) return fail("--timeout must be longer than 0s");
  for (const auto& arg : request.args) {
    if (arg.empty()) return fail("an argument of {} is empty", spec->name);
  }
  return {};
}

Result<Request> parse_request(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  auto words = split(line);
  if (!words) return words.error();
  if (words->empty()) return fail("empty request; try \"help\"");
  Request request;
  request.command = (*words)[0].text;
  if ((*words)[0].quoted || find_command(request.command) == nullptr) {
    return fail("unknown command {}; try \"help\"", quote_text(request.command));
  }
  for (std::size_t i = 1; i < words->size(); ++i) {
    const Word& word = (*words)[i];
    if (word.quoted || !word.text.starts_with("--")) {
      request.args.push_back(word.text);
      continue;
    }
    if (word.text == "--json") {
      request.json = true;
      continue;
    }
    std::string_view value;
    if (word.text == "--timeout") {
      if (i + 1 >= words->size()) return fail("--timeout needs a duration, such as 30s");
      value = (*words)[++i].text;
    } else if (word.text.starts_with("--timeout=")) {
      value = std::string_view(word.text).substr(10);
    } else {
      return fail("unknown option {}", quote_text(word.text));
    }
    const auto timeout = parse_duration(value);
    if (!timeout) return fail("--timeout {}: {}", quote_text(value), timeout.error().message());
    request.timeout = *timeout;
  }
  if (auto checked = check_request(request); !checked) return checked.error();
  return request;
}

std::string format_request(const Request& request) {
  std::string line = request.command;
  for (const auto& arg : request.args) line += " " + quote_word(arg);
  if (request.timeout) line += " --timeout " + format_duration(*request.timeout);
  if (request.json) line += " --json";
  return line;
}

std::string format_status(const Status& status) {
  if (status.code == exit_ok) return "OK";
  return fmt::format("ERR {} {}", status.code, escape_controls(status.message));
}

std::optional<Status> parse_status(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (line == "OK") return Status{};
  if (!line.starts_with("ERR ")) return std::nullopt;
  line.remove_prefix(4);
  int code = 0;
  const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), code);
  if (ec != std::errc{} || code <= 0 || code > 255) return std::nullopt;
  std::string_view message(end, static_cast<std::size_t>(line.data() + line.size() - end));
  if (!message.empty() && message.front() != ' ') return std::nullopt;
  if (!message.empty()) message.remove_prefix(1);
  return Status{code, std::string(message)};
}

std::string format_answer(const Status& status, const std::vector<std::string>& body) {
  std::string out = format_status(status) + "\n";
  for (const auto& line : body) {
    const std::string safe = escape_controls(line);
    out += safe.empty() ? std::string(" ") : safe;
    out += '\n';
  }
  out += '\n';
  return out;
}

std::string json_string(std::string_view text) {
  const std::string safe = escape_controls(text);
  std::string out = "\"";
  for (const char c : safe) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

void JsonWriter::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (first_.empty()) return;
  if (!first_.back()) out_ += ',';
  first_.back() = false;
}

JsonWriter& JsonWriter::begin_object() {
  separate();
  out_ += '{';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  out_ += '}';
  first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  separate();
  out_ += '[';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  out_ += ']';
  first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  separate();
  out_ += json_string(name);
  out_ += ':';
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::value(std::string_view text) {
  separate();
  out_ += json_string(text);
  return *this;
}

JsonWriter& JsonWriter::value(std::uint64_t number) {
  separate();
  out_ += std::to_string(number);
  return *this;
}

JsonWriter& JsonWriter::value(std::int64_t number) {
  separate();
  out_ += std::to_string(number);
  return *this;
}

JsonWriter& JsonWriter::value(double number) {
  separate();
  out_ += std::isfinite(number) ? fmt::format("{}", number) : std::string("null");
  return *this;
}

JsonWriter& JsonWriter::value(bool flag) {
  separate();
  out_ += flag ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::null() {
  separate();
  out_ += "null";
  return *this;
}

}  // namespace portico::control
