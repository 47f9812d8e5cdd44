#include <portico/diagnostics.hpp>

#include <algorithm>

#include <fmt/format.h>

#include <portico/text.hpp>

namespace portico {

// The file name comes from the command line and the message may quote the
// file, each escaped when it was made (see Diagnostics::error); a file name
// is escaped here, so that one diagnostic is one line.
std::string Diagnostic::to_string() const {
  const std::string_view kind = warning ? "warning: " : "";
  if (pos.line == 0) return fmt::format("{}: {}{}", escape_controls(file), kind, message);
  return fmt::format("{}:{}:{}: {}{}", escape_controls(file), pos.line, pos.column, kind, message);
}

void Diagnostics::warning(SourcePos pos, std::string message) {
  if (warnings_.size() >= max_kept) return;
  warnings_.push_back(Diagnostic{file_, pos, escape_controls(message), true});
}

void Diagnostics::error(SourcePos pos, std::string message) {
  if (list_.size() >= max_kept) {
    ++omitted_;
    return;
  }
  // Values are quoted with quote_text() where the message is made; this
  // catches what was not (a handler's own validation, the TOML parser's
  // description), so that no control character reaches a terminal.
  list_.push_back(Diagnostic{file_, pos, escape_controls(message)});
}

std::string Diagnostics::omitted_line() const {
  if (omitted_ == 0) return {};
  return fmt::format("{}: ... and {} more error{} (only the first {} are shown)", escape_controls(file_), omitted_,
                     omitted_ == 1 ? "" : "s", max_kept);
}

std::string Diagnostics::to_string() const {
  std::string out;
  for (const auto& d : list_) {
    out += d.to_string();
    out += '\n';
  }
  if (omitted_ > 0) out += omitted_line() + '\n';
  return out;
}

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  // A typo changes a few characters; more than a third of the word is a
  // different word.
  const std::size_t limit = std::max<std::size_t>(1, std::min<std::size_t>(3, word.size() / 3));
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

}  // namespace portico
