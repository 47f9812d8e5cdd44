// Fuzz target: what a control socket client sends porticod. The input is
// the byte stream of one connection, cut into request lines as porticod's
// control server does (at a newline; a last line without one is still a
// request; a line of max_request_line bytes or more is refused unread),
// and each line goes to control::parse_request.
//
// 1. An accepted request names a command of `help`'s list with as many
//    arguments as its synopsis shows, and is what check_request accepts.
// 2. A refusal's message is escaped: it goes into porticod's log and the
//    ERR answer, so it holds no control character and is valid UTF-8.
// 3. An accepted request written by format_request (as porticoctl sends
//    it) parses back to the same request.
// 4. The answer line made of any message (format_status, as porticod
//    writes it) is escaped, and parse_status (as porticoctl reads it)
//    gives the same code back.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <portico/text.hpp>

#include "check.hpp"
#include "ctl/protocol.hpp"

namespace {

namespace control = portico::control;

// A command as its synopsis line shows it: "drain LISTENER [--timeout 30s]".
struct Shape {
  std::string name;
  std::size_t min_args = 0;
  std::size_t max_args = 0;
  bool timeout = false;
};

std::vector<Shape> shapes_from_synopsis() {
  std::vector<Shape> shapes;
  for (const std::string& line : control::command_synopsis()) {
    // The usage ends where the description begins, after two spaces.
    const std::string usage = line.substr(0, line.find("  "));
    std::vector<std::string> words;
    for (std::size_t i = 0; i < usage.size();) {
      const std::size_t end = std::min(usage.find(' ', i), usage.size());
      if (end > i) words.push_back(usage.substr(i, end - i));
      i = end + 1;
    }
    Shape shape{words.at(0)};
    for (std::size_t i = 1; i < words.size(); ++i) {
      const std::string& w = words[i];
      if (w.starts_with("[--timeout")) {
        shape.timeout = true;
        ++i;  // its value, "30s]"
      } else if (w.starts_with('[')) {
        ++shape.max_args;
      } else {
        ++shape.min_args;
        ++shape.max_args;
      }
    }
    shapes.push_back(shape);
  }
  return shapes;
}

const Shape* find_shape(std::string_view name) {
  static const std::vector<Shape> shapes = shapes_from_synopsis();
  for (const auto& s : shapes) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool escaped(std::string_view text) { return portico::escape_controls(text) == text; }

std::string describe(const control::Request& r) {
  std::string out = "command " + portico::quote_text(r.command);
  for (const auto& a : r.args) out += ", arg " + portico::quote_text(a);
  if (r.json) out += ", --json";
  if (r.timeout) out += ", timeout " + std::to_string(r.timeout->count()) + " ms";
  return out;
}

void check_line(std::string_view line) {
  const auto request = control::parse_request(line);
  if (!request) {
    const std::string message = request.error().message();
    FUZZ_CHECK(!message.empty());
    FUZZ_CHECK(escaped(message), portico::escape_text(message));
    return;
  }
  const Shape* shape = find_shape(request->command);
  FUZZ_CHECK(shape != nullptr, describe(*request));
  FUZZ_CHECK(request->args.size() >= shape->min_args && request->args.size() <= shape->max_args, describe(*request));
  FUZZ_CHECK(!request->timeout || (shape->timeout && request->timeout->count() > 0), describe(*request));
  for (const auto& arg : request->args) FUZZ_CHECK(!arg.empty(), describe(*request));
  FUZZ_CHECK(control::check_request(*request), describe(*request));

  const std::string sent = control::format_request(*request);
  FUZZ_CHECK(sent.find('\n') == std::string::npos && escaped(sent), portico::escape_text(sent));
  const auto again = control::parse_request(sent);
  FUZZ_CHECK(again, sent + ": " + again.error().message());
  FUZZ_CHECK(*again == *request, sent + ": " + describe(*again) + " instead of " + describe(*request));
}

void check_status(std::string_view message) {
  const control::Status status{control::exit_usage, std::string(message)};
  // Three lines: the status, the message as a body line, the empty end.
  const std::string answer = control::format_answer(status, {std::string(message)});
  const std::size_t first = answer.find('\n');
  const std::size_t second = answer.find('\n', first + 1);
  FUZZ_CHECK(second != std::string::npos && second > first + 1 && answer.substr(second) == "\n\n",
             portico::escape_text(answer));
  FUZZ_CHECK(escaped(answer.substr(0, first)) && escaped(answer.substr(first + 1, second - first - 1)),
             portico::escape_text(answer));
  const std::string line = control::format_status(status);
  FUZZ_CHECK(line.find('\n') == std::string::npos, portico::escape_text(line));
  const auto back = control::parse_status(line);
  FUZZ_CHECK(back && back->code == control::exit_usage, portico::escape_text(line));
  // What porticoctl takes from a line porticod never wrote.
  if (const auto any = control::parse_status(message); any) FUZZ_CHECK(any->code >= 0 && any->code <= 255);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view stream(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  while (start < stream.size()) {
    const std::size_t newline = stream.find('\n', start);
    const std::size_t end = newline == std::string_view::npos ? stream.size() : newline;
    const std::string_view line = stream.substr(start, end - start);
    // porticod refuses the line and closes the connection.
    if (line.size() >= control::max_request_line) break;
    check_line(line);
    check_status(line);
    start = end + 1;
  }
  return 0;
}
