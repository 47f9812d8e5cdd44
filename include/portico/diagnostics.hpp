#pragma once
// Config mistakes, each with the place in the file it was found.

#include <cstdint>
#include <string>
#include <vector>

namespace portico {

// A 1-based line and column in a config source; 0 means "unknown".
struct SourcePos {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

// One mistake: formats as "FILE:LINE:COL: message", or "FILE:LINE:COL:
// warning: message" for what is not wrong yet but will be (a certificate
// that expires soon).
struct Diagnostic {
  std::string file;
  SourcePos pos;
  std::string message;
  bool warning = false;

  std::string to_string() const;
};

// Collects the mistakes found in one source, in the order found, so that a
// user sees them at once rather than one per attempt. Only the first
// `max_kept` are kept; the rest are counted, so that a file with thousands
// of mistakes costs neither memory nor a screenful per mistake.
class Diagnostics {
 public:
  // A user fixes the first few and runs --check again; 100 lines is more
  // than a terminal shows.
  static constexpr std::size_t max_kept = 100;

  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  // Control characters left in `message` are escaped (escape_controls() of
  // <portico/text.hpp>); values quoted in it should be quote_text()'d.
  void error(SourcePos pos, std::string message);
  // A warning does not make the config invalid; it is printed by --check
  // and logged at start and at each reload.
  void warning(SourcePos pos, std::string message);
  const std::vector<Diagnostic>& warnings() const { return warnings_; }

  const std::string& file() const { return file_; }
  // The first max_kept mistakes.
  const std::vector<Diagnostic>& all() const { return list_; }
  bool empty() const { return list_.empty(); }
  // Every mistake found, the ones not kept included.
  std::size_t size() const { return list_.size() + omitted_; }
  // How many were found beyond the first max_kept.
  std::size_t omitted() const { return omitted_; }
  // "FILE: ... and N more errors", or empty when none were omitted.
  std::string omitted_line() const;
  // Every kept diagnostic on its own line, then omitted_line() if any.
  std::string to_string() const;

 private:
  std::string file_;
  std::vector<Diagnostic> list_;
  std::vector<Diagnostic> warnings_;
  std::size_t omitted_ = 0;
};

// The closest of `candidates` to `word` when it is near enough to be a
// likely typo, or an empty string.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace portico
