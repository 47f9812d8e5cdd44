#include <portico/metrics.hpp>

#include <cmath>
#include <vector>

#include <fmt/format.h>

namespace portico {

namespace {

std::string escape_help(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void append_value(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else if (value == std::floor(value) && std::fabs(value) < 1e15) {
    fmt::format_to(std::back_inserter(out), "{}", static_cast<long long>(value));
  } else {
    fmt::format_to(std::back_inserter(out), "{}", value);
  }
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

MetricsWriter::Family& MetricsWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  if (const auto it = index_.find(name); it != index_.end()) return families_[it->second];
  index_.emplace(std::string(name), families_.size());
  families_.push_back(Family{std::string(name), std::string(type), escape_help(help), {}});
  return families_.back();
}

void MetricsWriter::sample(std::string& out, std::string_view name, std::span<const Label> labels,
                           std::string_view extra_label, std::string_view extra_value, double value) {
  out += name;
  if (!labels.empty() || !extra_label.empty()) {
    out += '{';
    bool first = true;
    for (const auto& [label, text] : labels) {
      if (!first) out += ',';
      first = false;
      out += label;
      out += "=\"";
      out += escape_label_value(text);
      out += '"';
    }
    if (!extra_label.empty()) {
      if (!first) out += ',';
      out += extra_label;
      out += "=\"";
      out += extra_value;
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  append_value(out, value);
  out += '\n';
}

void MetricsWriter::counter(std::string_view name, std::string_view help, std::span<const Label> labels,
                            double value) {
  sample(family(name, "counter", help).samples, name, labels, {}, {}, value);
}

void MetricsWriter::gauge(std::string_view name, std::string_view help, std::span<const Label> labels, double value) {
  sample(family(name, "gauge", help).samples, name, labels, {}, {}, value);
}

void MetricsWriter::counter(std::string_view name, std::string_view help, Labels labels, double value) {
  counter(name, help, std::span<const Label>(labels.begin(), labels.size()), value);
}

void MetricsWriter::gauge(std::string_view name, std::string_view help, Labels labels, double value) {
  gauge(name, help, std::span<const Label>(labels.begin(), labels.size()), value);
}

void MetricsWriter::histogram(std::string_view name, std::string_view help, Labels labels,
                              std::span<const double> upper_bounds, std::span<const std::uint64_t> bucket_counts,
                              std::uint64_t count, double sum) {
  std::string& out = family(name, "histogram", help).samples;
  const std::span<const Label> base(labels.begin(), labels.size());
  const std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < upper_bounds.size(); ++i) {
    if (i < bucket_counts.size()) cumulative += bucket_counts[i];
    std::string bound;
    append_value(bound, upper_bounds[i]);
    sample(out, bucket, base, "le", bound, static_cast<double>(cumulative));
  }
  sample(out, bucket, base, "le", "+Inf", static_cast<double>(count));
  sample(out, std::string(name) + "_sum", base, {}, {}, sum);
  sample(out, std::string(name) + "_count", base, {}, {}, static_cast<double>(count));
}

std::string MetricsWriter::text() const {
  std::string out;
  for (const auto& f : families_) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
    out += f.samples;
  }
  return out;
}

}  // namespace portico
