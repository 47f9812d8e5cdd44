#pragma once
// The control protocol porticod and porticoctl speak over porticod's
// control socket ([daemon] control_socket), line-based text so that it can
// be typed by hand (socat - UNIX-CONNECT:/run/portico/control.sock):
//
//   request   one line: a command, its arguments, options; words separated
//             by spaces, a word with spaces or quotes written as a quoted
//             string ("my listener", escapes as portico's logs write them:
//             \\ \" \n \t \xHH)
//   answer    "OK" or "ERR <exit code> <message>", then body lines (never
//             empty), then an empty line. With --json the body is one line
//             of JSON.
//
// Pure functions, no I/O: both programs and the unit tests use them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <portico/duration.hpp>
#include <portico/result.hpp>

#include "daemon/exit_codes.hpp"

namespace portico::control {

// Exit codes of porticoctl (sysexits(3)), also the codes of ERR answers:
// porticod's own (0, 1 the command failed, 64 unknown command or wrong
// arguments, 78 the configuration has errors) and these.
using portico::exit_config;
using portico::exit_ok;
using portico::exit_runtime;
using portico::exit_usage;
inline constexpr int exit_unavailable = 69; // EX_UNAVAILABLE: porticod cannot be reached
inline constexpr int exit_tempfail = 75;    // EX_TEMPFAIL: an upgrade is in progress; try again later
inline constexpr int exit_denied = 77;      // EX_NOPERM: not root nor in the socket's group

// The longest request line porticod reads, newline included; a longer one
// is refused and the connection closed. The longest useful request, a
// diff of a file with a long path, needs a few hundred bytes.
inline constexpr std::size_t max_request_line = 4096;

// How long `drain` waits by default before cutting what is left.
inline constexpr Duration default_drain_timeout = std::chrono::seconds(30);
// How long the new process of an upgrade (SIGUSR2, `upgrade`) has by
// default to load its configuration and serve every listener.
inline constexpr Duration default_upgrade_timeout = std::chrono::seconds(30);

struct Request {
  std::string command;            // status, connections, reload, diff, disable, enable, drain, probe, upgrade, help
  std::vector<std::string> args;  // positional: a listener name, diff's file
  bool json = false;              // --json
  std::optional<Duration> timeout;  // drain --timeout, upgrade --timeout

  friend bool operator==(const Request&, const Request&) = default;
};

// The commands, each with its arguments, one line each: what `help`
// answers and porticoctl --help prints.
const std::vector<std::string>& command_synopsis();

// Parses one request line (without its newline; a trailing "\r" is
// dropped) and checks it: a known command, the arguments it takes. The
// error is a sentence with the offending word quoted and escaped.
Result<Request> parse_request(std::string_view line);
// Checks a request made otherwise (porticoctl's command line) as
// parse_request() does.
Result<void> check_request(const Request& request);
// The request as a line parse_request() reads back (no newline).
std::string format_request(const Request& request);

// Splits a line into words, undoing quotes and escapes.
Result<std::vector<std::string>> split_words(std::string_view line);
// A word as format_request() writes it: bare when it can be, else quoted.
std::string quote_word(std::string_view word);

// The first line of an answer.
struct Status {
  int code = exit_ok;  // exit_ok for "OK"
  std::string message;
};
std::string format_status(const Status& status);
// nullopt for a line that is neither "OK" nor "ERR <code> <message>".
std::optional<Status> parse_status(std::string_view line);

// A whole answer: the status line, the body lines (an empty one is written
// as a single space, since an empty line ends the answer), the empty line.
std::string format_answer(const Status& status, const std::vector<std::string>& body);

// JSON, built by hand: strings are escaped as portico's logs escape text
// (escape_controls()), then as JSON, so the output is valid UTF-8 whatever
// the input.
std::string json_string(std::string_view text);

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view name);
  JsonWriter& value(std::string_view text);
  JsonWriter& value(const char* text) { return value(std::string_view(text)); }
  JsonWriter& value(const std::string& text) { return value(std::string_view(text)); }
  JsonWriter& value(std::uint64_t number);
  JsonWriter& value(std::int64_t number);
  JsonWriter& value(int number) { return value(static_cast<std::int64_t>(number)); }
  JsonWriter& value(double number);
  JsonWriter& value(bool flag);
  JsonWriter& null();
  // key(name).value(v) in one.
  template <typename T>
  JsonWriter& field(std::string_view name, const T& v) {
    return key(name).value(v);
  }
  const std::string& str() const { return out_; }

 private:
  void separate();
  std::string out_;
  std::vector<bool> first_;  // per open object or array: nothing written in it yet
  bool after_key_ = false;
};

}  // namespace portico::control
