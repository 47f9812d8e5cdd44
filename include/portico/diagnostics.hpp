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

// One mistake: formats as "FILE:LINE:COL: message".
struct Diagnostic {
  std::string file;
  SourcePos pos;
  std::string message;

  std::string to_string() const;
};

// Collects every mistake found in one source, in the order found, so that a
// user sees all of them at once rather than one per attempt.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  void error(SourcePos pos, std::string message);

  const std::string& file() const { return file_; }
  const std::vector<Diagnostic>& all() const { return list_; }
  bool empty() const { return list_.empty(); }
  std::size_t size() const { return list_.size(); }
  // Every diagnostic on its own line.
  std::string to_string() const;

 private:
  std::string file_;
  std::vector<Diagnostic> list_;
};

// The closest of `candidates` to `word` when it is near enough to be a
// likely typo, or an empty string.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace portico
