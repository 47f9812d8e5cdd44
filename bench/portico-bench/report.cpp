#include "report.hpp"

#include <fmt/format.h>

namespace bench {

namespace {

double us(std::uint64_t nanos) { return static_cast<double>(nanos) / 1e3; }

// Derived numbers both formats print.
struct Figures {
  double client_cpu_us_per_op = 0;
  double client_cpu_share = 0;  // of one core, over the window
  bool server = false;
  double server_cpu_us_per_op = 0;
  double server_cpu_s = 0;
  std::uint64_t server_rss_kb = 0;
  std::uint64_t server_rss_kb_before = 0;
  double server_bytes_per_conn = 0;  // idle only
  double mb_per_sec_sent = 0;
  double mb_per_sec_received = 0;
};

Figures figures(const Report& r) {
  Figures f;
  const auto& s = r.stats;
  const double ops = static_cast<double>(s.ops());
  const double window = r.result.idle ? r.result.seconds + r.result.ramp_seconds : s.seconds();
  if (ops > 0) f.client_cpu_us_per_op = s.client_cpu_seconds() * 1e6 / ops;
  if (window > 0) f.client_cpu_share = s.client_cpu_seconds() / window;
  if (s.seconds() > 0) {
    f.mb_per_sec_sent = static_cast<double>(s.bytes_sent()) / 1e6 / s.seconds();
    f.mb_per_sec_received = static_cast<double>(s.bytes_received()) / 1e6 / s.seconds();
  }
  const auto before = total(s.server_before());
  const auto after = total(s.server_after());
  if (!r.options.server_pids.empty() && before.ok && after.ok) {
    f.server = true;
    f.server_cpu_s = after.cpu_seconds - before.cpu_seconds;
    if (ops > 0) f.server_cpu_us_per_op = f.server_cpu_s * 1e6 / ops;
    f.server_rss_kb = after.rss_kb;
    f.server_rss_kb_before = before.rss_kb;
    if (r.result.idle && r.result.established > r.result.server_closed) {
      const double held = static_cast<double>(r.result.established - r.result.server_closed);
      f.server_bytes_per_conn = (static_cast<double>(after.rss_kb) - static_cast<double>(before.rss_kb)) * 1024.0 / held;
    }
  }
  return f;
}

std::string kib(std::uint64_t kb) {
  return kb >= 10 * 1024 ? fmt::format("{:.1f} MiB", static_cast<double>(kb) / 1024) : fmt::format("{} KiB", kb);
}

std::string pid_list(const std::vector<int>& pids, std::string_view sep) {
  std::string out;
  for (const int pid : pids) out += fmt::format("{}{}", out.empty() ? "" : sep, pid);
  return out;
}

double percent(std::uint64_t part, std::uint64_t whole) {
  return whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

}  // namespace

std::string format_latency(std::uint64_t nanos) {
  if (nanos < 1'000'000) return fmt::format("{:.0f} µs", us(nanos));
  if (nanos < 1'000'000'000) return fmt::format("{:.2f} ms", static_cast<double>(nanos) / 1e6);
  return fmt::format("{:.2f} s", static_cast<double>(nanos) / 1e9);
}

std::string format_human(const Report& r) {
  const auto& o = r.options;
  const auto& s = r.stats;
  const auto& h = s.latency();
  const auto f = figures(r);
  std::string out;
  auto line = [&out](std::string_view label, const std::string& text) {
    out += fmt::format("  {:<14}{}\n", label, text);
  };

  if (r.result.idle) {
    out += fmt::format("portico-bench idle {}: {} connections held {:.2f} s (ramp-up {:.2f} s){}\n",
                       r.target.to_string(), o.connections, r.result.seconds, r.result.ramp_seconds,
                       r.interrupted ? ", interrupted" : "");
    line("established", fmt::format("{} of {} ({:.0f} conn/s during ramp-up)", r.result.established,
                                    o.connections, r.result.ops_per_sec));
    line("server closed", fmt::format("{}", r.result.server_closed));
    line("connect time", fmt::format("p50 {}  p90 {}  p99 {}  max {}", format_latency(h.value_at_percentile(50)),
                                     format_latency(h.value_at_percentile(90)), format_latency(h.value_at_percentile(99)),
                                     format_latency(h.max())));
  } else {
    out += fmt::format("portico-bench {} {}: {} connections, {:.2f} s measured after {:.2f} s warm-up{}\n",
                       mode_name(o.mode), r.target.to_string(), o.connections, s.seconds(),
                       std::chrono::duration<double>(o.warmup).count(), r.interrupted ? ", interrupted" : "");
    line("ops", fmt::format("{}  ({:.1f} ops/s)", s.ops(), r.result.ops_per_sec));
    line("latency", fmt::format("p50 {}  p90 {}  p99 {}  max {}", format_latency(h.value_at_percentile(50)),
                                format_latency(h.value_at_percentile(90)), format_latency(h.value_at_percentile(99)),
                                format_latency(h.max())));
    if (o.mode == Mode::stream) {
      line("throughput", fmt::format("{:.1f} MB/s sent, {:.1f} MB/s received", f.mb_per_sec_sent, f.mb_per_sec_received));
    }
  }

  std::string errors;
  for (unsigned k = 0; k < static_cast<unsigned>(ErrorKind::count_); ++k) {
    if (auto n = s.errors(static_cast<ErrorKind>(k))) {
      errors += fmt::format("{}{} {}", errors.empty() ? "" : ", ", error_name(static_cast<ErrorKind>(k)), n);
    }
  }
  line("errors", errors.empty() ? "none" : errors);
  if (r.tls) {
    const auto& t = r.tls->summary();
    line("tls", fmt::format("{} {} {}, server key {}; {} handshakes, {} resumed ({:.1f}%)",
                            t.version.empty() ? "-" : t.version, t.cipher, t.group, t.server_key, s.handshakes(),
                            s.resumed(), percent(s.resumed(), s.handshakes())));
  }
  line("client CPU", fmt::format("{:.2f} µs/op  ({:.0f}% of one core)", f.client_cpu_us_per_op, f.client_cpu_share * 100));
  if (f.server) {
    line("server CPU", fmt::format("{:.2f} µs/op  ({:.2f} s, pid {})", f.server_cpu_us_per_op, f.server_cpu_s,
                                   pid_list(o.server_pids, "+")));
    if (o.server_pids.size() > 1) {
      // Which process costs what: a TLS front-end against the server behind it.
      std::string each;
      const double ops = static_cast<double>(s.ops());
      for (std::size_t i = 0; i < o.server_pids.size(); ++i) {
        const double cpu = s.server_after()[i].cpu_seconds - s.server_before()[i].cpu_seconds;
        each += fmt::format("{}pid {} {:.2f} µs/op {}", each.empty() ? "" : ", ", o.server_pids[i],
                            ops > 0 ? cpu * 1e6 / ops : 0.0, kib(s.server_after()[i].rss_kb));
      }
      line("each process", each);
    }
    if (r.result.idle) {
      line("server RSS", fmt::format("{} -> {}  ({:.0f} bytes per held connection)", kib(f.server_rss_kb_before),
                                     kib(f.server_rss_kb), f.server_bytes_per_conn));
    } else {
      line("server RSS", kib(f.server_rss_kb));
    }
  } else if (!o.server_pids.empty()) {
    line("server", fmt::format("pid {} could not be read from /proc", pid_list(o.server_pids, ", ")));
  }
  return out;
}

std::string format_json(const Report& r) {
  const auto& o = r.options;
  const auto& s = r.stats;
  const auto& h = s.latency();
  const auto f = figures(r);
  std::string errors;
  for (unsigned k = 0; k < static_cast<unsigned>(ErrorKind::count_); ++k) {
    if (auto n = s.errors(static_cast<ErrorKind>(k))) {
      errors += fmt::format("{}\"{}\": {}", errors.empty() ? "" : ", ", error_name(static_cast<ErrorKind>(k)), n);
    }
  }
  const double duration = r.result.idle ? r.result.seconds : s.seconds();
  // Keys only; every value is a number, a bool or a fixed word, so no
  // string escaping is needed beyond the address, which has no quotes.
  std::string out = fmt::format(
      "{{\"mode\": \"{}\", \"target\": \"{}\", \"connections\": {}, \"duration_s\": {:.6f}, "
      "\"warmup_s\": {:.6f}, \"ops\": {}, \"ops_per_sec\": {:.3f}, "
      "\"latency_us\": {{\"p50\": {:.3f}, \"p90\": {:.3f}, \"p99\": {:.3f}, \"max\": {:.3f}, \"mean\": {:.3f}}}, "
      "\"errors\": {{{}}}, \"error_total\": {}, \"client_cpu_us_per_op\": {:.3f}, \"client_cpu_s\": {:.6f}, "
      "\"bytes_sent\": {}, \"bytes_received\": {}, \"interrupted\": {}",
      mode_name(o.mode), r.target.to_string(), o.connections, duration,
      r.result.idle ? 0.0 : std::chrono::duration<double>(o.warmup).count(), s.ops(), r.result.ops_per_sec,
      us(h.value_at_percentile(50)), us(h.value_at_percentile(90)), us(h.value_at_percentile(99)), us(h.max()),
      h.mean() / 1e3, errors, s.error_total(), f.client_cpu_us_per_op, s.client_cpu_seconds(), s.bytes_sent(),
      s.bytes_received(), r.interrupted ? "true" : "false");
  if (o.mode == Mode::stream) {
    out += fmt::format(", \"mb_per_sec_sent\": {:.3f}, \"mb_per_sec_received\": {:.3f}", f.mb_per_sec_sent,
                       f.mb_per_sec_received);
  }
  if (r.result.idle) {
    out += fmt::format(", \"attempted\": {}, \"established\": {}, \"server_closed\": {}, \"ramp_s\": {:.6f}",
                       r.result.attempted, r.result.established, r.result.server_closed, r.result.ramp_seconds);
  }
  if (r.tls) {
    const auto& t = r.tls->summary();
    out += fmt::format(", \"tls\": {{\"version\": \"{}\", \"cipher\": \"{}\", \"group\": \"{}\", \"server_key\": \"{}\", "
                       "\"handshakes\": {}, \"resumed\": {}}}",
                       t.version, t.cipher, t.group, t.server_key, s.handshakes(), s.resumed());
  }
  if (f.server) {
    std::string each;
    for (std::size_t i = 0; i < o.server_pids.size(); ++i) {
      const auto& b = s.server_before()[i];
      const auto& a = s.server_after()[i];
      each += fmt::format("{}{{\"pid\": {}, \"cpu_s\": {:.6f}, \"rss_kb\": {}, \"rss_kb_before\": {}}}",
                          each.empty() ? "" : ", ", o.server_pids[i], a.cpu_seconds - b.cpu_seconds, a.rss_kb, b.rss_kb);
    }
    out += fmt::format(", \"server_pids\": [{}], \"server_processes\": [{}], \"server_cpu_s\": {:.6f}, "
                       "\"server_cpu_us_per_op\": {:.3f}, \"server_rss_kb\": {}, \"server_rss_kb_before\": {}",
                       pid_list(o.server_pids, ", "), each, f.server_cpu_s, f.server_cpu_us_per_op, f.server_rss_kb,
                       f.server_rss_kb_before);
    if (r.result.idle) out += fmt::format(", \"server_bytes_per_conn\": {:.1f}", f.server_bytes_per_conn);
  }
  out += "}\n";
  return out;
}

}  // namespace bench
