#pragma once
// Printing text that came from outside (a config file, a client, a program)
// in errors and log lines, so that it can neither act on a terminal
// (colours, cursor moves) nor split a line and forge another one.

#include <string>
#include <string_view>

namespace portico {

// `text` with every byte that could act on a terminal or break a line
// written as an escape; valid UTF-8 otherwise passes unchanged, so names in
// any script stay readable:
//   \n \r \t         newline, carriage return, tab
//   \xHH             any other byte below 0x20, DEL (0x7f), and each byte
//                    that is not part of valid UTF-8
//   \u0080..\u009f   the C1 control characters, which some terminals obey
//                    as they do ESC [
//   \\ and \"        a backslash and a double quote, so that an escape
//                    cannot be forged and a quoted value ends where it seems
// The result holds no control character and reads back unambiguously:
// between double quotes it is a valid TOML basic string for any input that
// was valid UTF-8.
std::string escape_text(std::string_view text);

// "\"" + escape_text(text) + "\"": how errors and log lines show a value.
std::string quote_text(std::string_view text);

// For a whole message whose values may or may not have been escaped
// already: control characters, C1 controls and bytes that are not UTF-8 are
// escaped as escape_text() does; backslashes and quotes are left as they
// are, so that the escapes already made read the same. What Diagnostics
// and the daemon's log apply to every line they print.
std::string escape_controls(std::string_view text);

}  // namespace portico
