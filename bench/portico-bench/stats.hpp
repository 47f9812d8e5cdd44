#pragma once
// What one run measures. Everything is recorded only inside the measurement
// window, so warm-up and tear-down never leak into the results.

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include "histogram.hpp"
#include "proc.hpp"

namespace bench {

using Clock = std::chrono::steady_clock;

enum class ErrorKind : unsigned {
  connect_refused,   // ECONNREFUSED: nothing listening, or backlog full with syncookies off
  reset,             // ECONNRESET / EPIPE
  timeout,           // one operation took longer than --timeout
  bad_reply,         // bytes differ from --expect or from what echo sent
  closed,            // server closed before the reply was complete
  addr_unavailable,  // EADDRNOTAVAIL / EADDRINUSE: out of source ports
  fd_limit,          // EMFILE / ENFILE
  unreachable,       // ENETUNREACH / EHOSTUNREACH
  tls,               // a TLS handshake or record failed (EPROTO from the TLS layer)
  other,
  count_
};

std::string_view error_name(ErrorKind kind);
ErrorKind classify_errno(int err);

class Stats {
 public:
  // Opens the measurement window: clears counters and samples CPU clocks,
  // ours and those of the server's processes.
  void begin(Clock::time_point now, const std::vector<int>& server_pids);
  // Closes it; later records are ignored.
  void end(Clock::time_point now, const std::vector<int>& server_pids);
  bool measuring() const { return measuring_; }

  void op(Clock::duration latency) {
    if (!measuring_) return;
    ++ops_;
    latency_.record(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count()));
  }
  void error(ErrorKind kind) {
    if (measuring_) ++errors_[static_cast<unsigned>(kind)];
  }
  void sent(std::uint64_t n) {
    if (measuring_) bytes_sent_ += n;
  }
  void received(std::uint64_t n) {
    if (measuring_) bytes_received_ += n;
  }
  // A TLS handshake finished: in full, or by resuming a session.
  void handshake(bool resumed) {
    if (!measuring_) return;
    ++handshakes_;
    if (resumed) ++resumed_;
  }

  std::uint64_t ops() const { return ops_; }
  const Histogram& latency() const { return latency_; }
  std::uint64_t errors(ErrorKind kind) const { return errors_[static_cast<unsigned>(kind)]; }
  std::uint64_t error_total() const;
  std::uint64_t bytes_sent() const { return bytes_sent_; }
  std::uint64_t bytes_received() const { return bytes_received_; }
  std::uint64_t handshakes() const { return handshakes_; }
  std::uint64_t resumed() const { return resumed_; }
  double seconds() const { return std::chrono::duration<double>(end_ - begin_).count(); }
  double client_cpu_seconds() const { return cpu_end_ - cpu_begin_; }
  // One sample per --server-pid, in the order given.
  const std::vector<ProcSample>& server_before() const { return server_begin_; }
  const std::vector<ProcSample>& server_after() const { return server_end_; }

 private:
  bool measuring_ = false;
  std::uint64_t ops_ = 0;
  Histogram latency_;
  std::array<std::uint64_t, static_cast<unsigned>(ErrorKind::count_)> errors_{};
  std::uint64_t bytes_sent_ = 0;
  std::uint64_t bytes_received_ = 0;
  std::uint64_t handshakes_ = 0;
  std::uint64_t resumed_ = 0;
  Clock::time_point begin_{}, end_{};
  double cpu_begin_ = 0, cpu_end_ = 0;
  std::vector<ProcSample> server_begin_, server_end_;
};

}  // namespace bench
