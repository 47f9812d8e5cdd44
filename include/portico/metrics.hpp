#pragma once
// Metrics in the Prometheus text exposition format (version 0.0.4): the
// server writes its own series, and every handler may add its own
// (Handler::write_metrics), with names prefixed "portico_".
//
//   writer.counter("portico_upstream_connects_total", "Connections made to each upstream",
//                  {{"listener", name}, {"upstream", "10.0.0.2:5432"}}, 42);
//
// Samples of one metric family may be written at different times (by each
// listener, say): the writer groups them under one HELP and TYPE line, as
// the format requires, in the order families were first written.

#include <cstdint>
#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portico {

class MetricsWriter {
 public:
  using Label = std::pair<std::string_view, std::string_view>;
  using Labels = std::initializer_list<Label>;

  // `name` must match [a-zA-Z_:][a-zA-Z0-9_:]* and label names
  // [a-zA-Z_][a-zA-Z0-9_]*; label values may hold any bytes (they are
  // escaped). A family keeps the type and help it was first written with.
  void counter(std::string_view name, std::string_view help, Labels labels, double value);
  void gauge(std::string_view name, std::string_view help, Labels labels, double value);
  void counter(std::string_view name, std::string_view help, std::span<const Label> labels, double value);
  void gauge(std::string_view name, std::string_view help, std::span<const Label> labels, double value);
  // A histogram: `bucket_counts[i]` observations fell at or below
  // `upper_bounds[i]` but above the bound before (not cumulative; the
  // writer accumulates), `count` in all, `sum` their total.
  void histogram(std::string_view name, std::string_view help, Labels labels, std::span<const double> upper_bounds,
                 std::span<const std::uint64_t> bucket_counts, std::uint64_t count, double sum);

  // The exposition, every family with its HELP and TYPE lines.
  std::string text() const;

 private:
  struct Family {
    std::string name;
    std::string type;
    std::string help;
    std::string samples;
  };
  Family& family(std::string_view name, std::string_view type, std::string_view help);
  static void sample(std::string& out, std::string_view name, std::span<const Label> labels,
                     std::string_view extra_label, std::string_view extra_value, double value);

  std::vector<Family> families_;
  std::map<std::string, std::size_t, std::less<>> index_;
};

// Label values and HELP text escaped as the format requires.
std::string escape_label_value(std::string_view value);

// The standard process_* series of the calling process, from /proc/self:
// process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds and
// process_start_time_seconds. A value that cannot be read is left out.
void write_process_metrics(MetricsWriter& out);

}  // namespace portico
