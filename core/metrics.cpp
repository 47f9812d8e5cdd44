#include <portico/metrics.hpp>

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <optional>
#include <cstdio>
#include <fstream>
#include <sstream>
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

namespace {

// Everything after the command name of /proc/self/stat (which may hold
// spaces and parentheses), split at spaces: field 3 (state) is [0].
std::vector<std::string> stat_fields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

// The boot time, in seconds since the epoch, from /proc/stat.
std::optional<double> boot_time() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("btime ")) return std::stod(line.substr(6));
  }
  return std::nullopt;
}

}  // namespace

void write_process_metrics(MetricsWriter& out) {
  const auto fields = stat_fields();
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  // Fields 14 and 15 (utime, stime), 22 (starttime), 23 (vsize), 24 (rss).
  if (fields.size() > 21 && ticks > 0) {
    try {
      out.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds", {},
                  (std::stod(fields[11]) + std::stod(fields[12])) / ticks);
      if (const auto boot = boot_time()) {
        out.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds", {},
                  *boot + std::stod(fields[19]) / ticks);
      }
      out.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes", {}, std::stod(fields[20]));
      out.gauge("process_resident_memory_bytes", "Resident memory size in bytes", {},
                std::stod(fields[21]) * static_cast<double>(::sysconf(_SC_PAGESIZE)));
    } catch (const std::exception&) {
      // A kernel that wrote something else: the series are left out.
    }
  }
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    std::size_t open = 0;
    while (const dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] != '.') ++open;
    }
    ::closedir(dir);
    // The directory's own descriptor was counted too.
    out.gauge("process_open_fds", "Number of open file descriptors", {}, static_cast<double>(open - 1));
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    out.gauge("process_max_fds", "Maximum number of open file descriptors", {},
              limit.rlim_cur == RLIM_INFINITY ? INFINITY : static_cast<double>(limit.rlim_cur));
  }
}

}  // namespace portico
