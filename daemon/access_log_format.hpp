#pragma once
// How the access log words a connection: one logfmt line, one JSON object
// a line, or the fields of one journal entry. Pure functions of a record,
// so that they are tested alone.
//
//   time=2026-12-05T10:00:00.123Z listener=hello handler=greeting peer=127.0.0.1:50312
//   local=127.0.0.1:8888 duration=0.000210 bytes_in=14 bytes_out=19 end=handler_done
//
// Every value a client, a program or the config can choose is escaped:
// logfmt quotes a value holding a space, '=', '"', '\' or anything but
// printable ASCII, and escapes inside the quotes as escape_text() does; JSON
// escapes as RFC 8259 asks, C1 controls too, and writes a byte that is not
// UTF-8 as U+FFFD; a journal field holds escape_controls() of the value.

#include <chrono>
#include <string>
#include <string_view>

#include <portico/config.hpp>
#include <portico/events.hpp>

namespace portico {

// Appends the record's line, newline included.
void format_connection(std::string& out, AccessLogFormat format, const ConnectionRecord& record,
                       std::chrono::system_clock::time_point now);
void format_refusal(std::string& out, AccessLogFormat format, const RefusalRecord& record,
                    std::chrono::system_clock::time_point now);

// A journal entry, serialized for the writer: its size as 4 bytes (host
// order), then each field "KEY=value" as a 4-byte length and its bytes. MESSAGE= is the line in
// `format`, then PRIORITY=, SYSLOG_IDENTIFIER= and a PORTICO_* field for
// each value (PORTICO_LISTENER=, PORTICO_PEER=, ...).
void journal_connection(std::string& out, AccessLogFormat format, const ConnectionRecord& record,
                        std::chrono::system_clock::time_point now);
void journal_refusal(std::string& out, AccessLogFormat format, const RefusalRecord& record,
                     std::chrono::system_clock::time_point now);

// The pieces, for tests.
void append_logfmt_value(std::string& out, std::string_view value);
void append_json_string(std::string& out, std::string_view value);

}  // namespace portico
