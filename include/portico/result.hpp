#pragma once
// How portico's fallible functions report failure: a Result<T> holds either
// the value or an Error with a sentence saying what went wrong, e.g.
//
//   Result<Duration> d = parse_duration("10x");
//   if (!d) std::puts(d.error().message().c_str());  // "invalid duration ..."
//
// Exceptions are kept for programming errors (asking Options for an option
// a handler type never declared) and for registering a handler type twice.
// I/O outcomes of a connection are IoResult values (<portico/stream.hpp>).

#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>

#include <boost/system/result.hpp>
#include <fmt/format.h>

namespace portico {

class Error {
 public:
  Error() = default;
  const std::string& message() const { return message_; }

 private:
  friend Error fail(std::string message);
  std::string message_;
};

// The Error to return: `return fail("port {} is taken", port);`.
inline Error fail(std::string message) {
  Error error;
  error.message_ = std::move(message);
  return error;
}
template <typename... Args>
Error fail(fmt::format_string<Args...> format, Args&&... args) {
  return fail(fmt::format(format, std::forward<Args>(args)...));
}

inline std::ostream& operator<<(std::ostream& out, const Error& error) { return out << error.message(); }

template <typename T>
using Result = boost::system::result<T, Error>;

// What Result<T>::value() throws on an error.
[[noreturn]] inline void throw_exception_from_error(const Error& error, const boost::source_location&) {
  throw std::runtime_error(error.message());
}

}  // namespace portico
