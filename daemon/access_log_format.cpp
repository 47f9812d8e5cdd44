#include "daemon/access_log_format.hpp"

#include <arpa/inet.h>
#include <time.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>

#include <fmt/format.h>

#include <portico/text.hpp>
#include <portico/tls.hpp>

namespace portico {

namespace {

using std::chrono::system_clock;

// "2026-12-05T10:00:00.123Z". gmtime_r once a second: the date part of the
// last second is kept (one thread formats: the server's).
void append_time(std::string& out, system_clock::time_point now) {
  thread_local std::int64_t cached_second = -1;
  thread_local std::array<char, 24> cached{};
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::int64_t second = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  if (second != cached_second) {
    const time_t t = static_cast<time_t>(second);
    tm parts{};
    gmtime_r(&t, &parts);
    std::strftime(cached.data(), cached.size(), "%Y-%m-%dT%H:%M:%S", &parts);
    cached_second = second;
  }
  out += cached.data();
  const auto millis = static_cast<int>(ms - second * 1000);
  out += '.';
  out += static_cast<char>('0' + millis / 100);
  out += static_cast<char>('0' + millis / 10 % 10);
  out += static_cast<char>('0' + millis % 10);
  out += 'Z';
}

// Writes `value` in decimal at `at`; returns the end.
char* write_decimal(char* at, std::uint32_t value) {
  char digits[10];
  std::size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) *at++ = digits[--n];
  return at;
}

// An endpoint as Endpoint::to_string() writes it, without allocating for
// an IP one. IPv4 is written here: glibc's inet_ntop calls sprintf once per
// byte, which was a third of what the access log cost per connection.
class EndpointText {
 public:
  explicit EndpointText(const Endpoint& e) {
    if (e.is_unix) {
      unix_ = e.to_string();
      return;
    }
    char* at = buffer_.data();
    if (e.ip.is_v4()) {
      const auto bytes = e.ip.to_v4().to_bytes();
      for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i != 0) *at++ = '.';
        at = write_decimal(at, bytes[i]);
      }
    } else {
      const auto bytes = e.ip.to_v6().to_bytes();
      *at++ = '[';
      if (::inet_ntop(AF_INET6, bytes.data(), at, INET6_ADDRSTRLEN) != nullptr) at += std::strlen(at);
      *at++ = ']';
    }
    *at++ = ':';
    at = write_decimal(at, e.port);
    size_ = static_cast<std::size_t>(at - buffer_.data());
  }
  std::string_view view() const { return unix_.empty() ? std::string_view(buffer_.data(), size_) : unix_; }

 private:
  // "[" INET6_ADDRSTRLEN (its NUL included) "]:65535"
  std::array<char, INET6_ADDRSTRLEN + 8> buffer_{};
  std::size_t size_ = 0;
  std::string unix_;
};

// Microseconds as seconds with six decimals, "0.000210", exactly.
void append_seconds(std::string& out, std::chrono::microseconds value) {
  const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(value.count(), 0));
  const fmt::format_int seconds(us / 1000000);
  out.append(seconds.data(), seconds.size());
  char fraction[7] = {'.', '0', '0', '0', '0', '0', '0'};
  std::uint64_t rest = us % 1000000;
  for (std::size_t i = 6; i > 0; --i, rest /= 10) fraction[i] = static_cast<char>('0' + rest % 10);
  out.append(fraction, sizeof fraction);
}

// The length of the valid UTF-8 sequence at the start of `s` and the code
// point it encodes, or 0 when it is not one (overlong forms and surrogates
// included).
std::size_t utf8_sequence(std::string_view s, std::uint32_t& cp) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i) & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return n;
}

// The bytes a logfmt value may hold without quotes: printable ASCII but
// for '=', '"' and '\\'.
constexpr std::array<bool, 256> logfmt_plain_bytes = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x21; c < 0x7f; ++c) plain[static_cast<std::size_t>(c)] = c != '=' && c != '"' && c != '\\';
  return plain;
}();

bool plain_logfmt(std::string_view value) {
  if (value.empty()) return false;
  for (const char ch : value) {
    if (!logfmt_plain_bytes[static_cast<unsigned char>(ch)]) return false;
  }
  return true;
}

// A key as given by a handler's annotate(): lowercase words joined by '_'
// are expected; anything else becomes '_' rather than break the line.
void append_key(std::string& out, std::string_view key, bool upper) {
  for (const char ch : key) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
    const char c = ok ? ch : (ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : '_');
    out += upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
  }
}

// One line, in logfmt or JSON.
class Line {
 public:
  Line(std::string& out, AccessLogFormat format) : out_(out), json_(format == AccessLogFormat::json) {
    if (json_) out_ += '{';
  }
  void time(system_clock::time_point now) {
    key("time");
    if (json_) out_ += '"';
    append_time(out_, now);
    if (json_) out_ += '"';
  }
  void text(std::string_view name, std::string_view value) {
    key(name);
    string(value);
  }
  // A field a handler named (Connection::annotate): its key is made safe.
  void annotation(std::string_view name, std::string_view value) {
    handler_key(name);
    string(value);
  }
  void number(std::string_view name, std::uint64_t value) {
    key(name);
    const fmt::format_int digits(value);
    out_.append(digits.data(), digits.size());
  }
  void seconds(std::string_view name, std::chrono::microseconds value) {
    key(name);
    append_seconds(out_, value);
  }
  void boolean(std::string_view name, bool value) {
    key(name);
    out_ += value ? "true" : "false";
  }
  void finish() { out_ += json_ ? "}\n" : "\n"; }

 private:
  // The keys portico writes are lowercase words already: the separator,
  // the key and what follows it are appended at once.
  void key(std::string_view name) {
    std::array<char, 48> text;
    std::size_t n = 0;
    if (json_) {
      if (!first_) text[n++] = ',';
      text[n++] = '"';
    } else if (!first_) {
      text[n++] = ' ';
    }
    first_ = false;
    const std::size_t length = std::min(name.size(), text.size() - 4);
    std::memcpy(text.data() + n, name.data(), length);
    n += length;
    if (json_) text[n++] = '"';
    text[n++] = json_ ? ':' : '=';
    out_.append(text.data(), n);
  }
  void handler_key(std::string_view name) {
    separate();
    append_key(out_, name, false);
    out_ += json_ ? "\":" : "=";
  }
  void string(std::string_view value) {
    if (json_) {
      append_json_string(out_, value);
    } else {
      append_logfmt_value(out_, value);
    }
  }
  void separate() {
    if (json_) {
      out_ += first_ ? "\"" : ",\"";
    } else if (!first_) {
      out_ += ' ';
    }
    first_ = false;
  }

  std::string& out_;
  bool json_;
  bool first_ = true;
};

// The fields of one journal entry (see journal_connection()).
class Entry {
 public:
  explicit Entry(std::string& out) : out_(out) {}
  void time(system_clock::time_point) {}  // the journal keeps its own
  void field(std::string_view name, std::string_view value) {
    const std::size_t at = begin();
    out_ += name;
    out_ += '=';
    out_ += value;
    end(at);
  }
  void text(std::string_view name, std::string_view value) {
    const std::size_t at = begin();
    out_ += "PORTICO_";
    append_key(out_, name, true);
    out_ += '=';
    bool plain = true;
    for (const char ch : value) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c >= 0x7f) plain = false;
    }
    if (plain) {
      out_ += value;
    } else {
      out_ += escape_controls(value);
    }
    end(at);
  }
  void annotation(std::string_view name, std::string_view value) { text(name, value); }
  void number(std::string_view name, std::uint64_t value) { text(name, fmt::format_int(value).str()); }
  void seconds(std::string_view name, std::chrono::microseconds value) {
    std::string text_value;
    append_seconds(text_value, value);
    text(name, text_value);
  }
  void boolean(std::string_view name, bool value) { text(name, value ? "true" : "false"); }
  void finish() {}

 private:
  std::size_t begin() {
    const std::size_t at = out_.size();
    out_.append(sizeof(std::uint32_t), '\0');
    return at;
  }
  void end(std::size_t at) {
    const auto size = static_cast<std::uint32_t>(out_.size() - at - sizeof(std::uint32_t));
    std::memcpy(out_.data() + at, &size, sizeof size);
  }

  std::string& out_;
};

template <typename Out>
void describe(Out& out, const ConnectionRecord& r, system_clock::time_point now) {
  out.time(now);
  out.text("listener", r.listener);
  out.text("handler", r.handler);
  out.text("peer", EndpointText(r.peer).view());
  if (r.socket_peer != nullptr) out.text("socket_peer", EndpointText(*r.socket_peer).view());
  out.text("local", EndpointText(r.local).view());
  out.seconds("duration", r.duration);
  out.number("bytes_in", r.bytes_received);
  out.number("bytes_out", r.bytes_sent);
  out.text("end", to_string(r.end));
  if (r.end == ConnectionEnd::error) out.text("error", r.error);
  for (const auto& [key, value] : r.fields) out.annotation(key, value);
  if (r.tls != nullptr) {
    const TlsInfo& tls = *r.tls;
    out.text("tls_protocol", tls.protocol);
    out.text("tls_cipher", tls.cipher);
    if (!tls.server_name.empty()) out.text("tls_sni", tls.server_name);
    if (!tls.alpn.empty()) out.text("tls_alpn", tls.alpn);
    if (!tls.peer_subject.empty()) out.text("tls_client_subject", tls.peer_subject);
    if (!tls.peer_hash.empty()) out.text("tls_client_hash", tls.peer_hash);
    out.boolean("tls_resumed", tls.resumed);
  }
  out.finish();
}

template <typename Out>
void describe(Out& out, const RefusalRecord& r, system_clock::time_point now) {
  out.time(now);
  out.text("listener", r.listener);
  out.text("handler", r.handler);
  out.text("peer", EndpointText(r.peer).view());
  if (r.socket_peer != nullptr) out.text("socket_peer", EndpointText(*r.socket_peer).view());
  out.text("refused", to_string(r.reason));
  out.text("detail", r.detail);
  if (r.suppressed > 0) out.number("suppressed", r.suppressed);
  out.finish();
}

template <typename Record>
void journal(std::string& out, AccessLogFormat format, const Record& record, system_clock::time_point now) {
  thread_local std::string line;
  line.clear();
  Line message(line, format);
  describe(message, record, now);
  line.pop_back();  // the newline
  // The entry's size first, then its fields.
  const std::size_t at = out.size();
  out.append(sizeof(std::uint32_t), '\0');
  Entry entry(out);
  entry.field("MESSAGE", line);
  entry.field("PRIORITY", "6");
  entry.field("SYSLOG_IDENTIFIER", "porticod");
  describe(entry, record, now);
  const auto size = static_cast<std::uint32_t>(out.size() - at - sizeof(std::uint32_t));
  std::memcpy(out.data() + at, &size, sizeof size);
}

}  // namespace

void append_logfmt_value(std::string& out, std::string_view value) {
  if (plain_logfmt(value)) {
    out += value;
    return;
  }
  out += '"';
  out += escape_text(value);
  out += '"';
}

void append_json_string(std::string& out, std::string_view value) {
  out += '"';
  const auto safe = [](unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; };
  for (std::size_t i = 0; i < value.size();) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (safe(c)) {
      std::size_t end = i + 1;
      while (end < value.size() && safe(static_cast<unsigned char>(value[end]))) ++end;
      out.append(value.substr(i, end - i));
      i = end;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      default: break;
    }
    if (c < 0x80) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
      ++i;
      continue;
    }
    std::uint32_t cp = 0;
    const std::size_t n = utf8_sequence(value.substr(i), cp);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
    } else if (cp <= 0x9f) {
      // C1 controls, which some terminals obey.
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", cp);
      i += n;
    } else {
      out.append(value.substr(i, n));
      i += n;
    }
  }
  out += '"';
}

void format_connection(std::string& out, AccessLogFormat format, const ConnectionRecord& record,
                       system_clock::time_point now) {
  Line line(out, format);
  describe(line, record, now);
}

void format_refusal(std::string& out, AccessLogFormat format, const RefusalRecord& record,
                    system_clock::time_point now) {
  Line line(out, format);
  describe(line, record, now);
}

void journal_connection(std::string& out, AccessLogFormat format, const ConnectionRecord& record,
                        system_clock::time_point now) {
  journal(out, format, record, now);
}

void journal_refusal(std::string& out, AccessLogFormat format, const RefusalRecord& record,
                     system_clock::time_point now) {
  journal(out, format, record, now);
}

}  // namespace portico
