#include "stats.hpp"

#include <cerrno>

namespace bench {

std::string_view error_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::connect_refused: return "connect_refused";
    case ErrorKind::reset: return "reset";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::bad_reply: return "bad_reply";
    case ErrorKind::closed: return "closed";
    case ErrorKind::addr_unavailable: return "addr_unavailable";
    case ErrorKind::fd_limit: return "fd_limit";
    case ErrorKind::unreachable: return "unreachable";
    case ErrorKind::tls: return "tls";
    case ErrorKind::other:
    case ErrorKind::count_: break;
  }
  return "other";
}

ErrorKind classify_errno(int err) {
  switch (err) {
    case ECONNREFUSED: return ErrorKind::connect_refused;
    case ECONNRESET:
    case EPIPE: return ErrorKind::reset;
    case ETIMEDOUT: return ErrorKind::timeout;
    case EADDRNOTAVAIL:
    case EADDRINUSE: return ErrorKind::addr_unavailable;
    case EMFILE:
    case ENFILE: return ErrorKind::fd_limit;
    case ENETUNREACH:
    case EHOSTUNREACH: return ErrorKind::unreachable;
    case EPROTO: return ErrorKind::tls;
    default: return ErrorKind::other;
  }
}

namespace {

std::vector<ProcSample> sample_all(const std::vector<int>& pids) {
  std::vector<ProcSample> samples;
  samples.reserve(pids.size());
  for (const int pid : pids) samples.push_back(sample_process(pid));
  return samples;
}

}  // namespace

void Stats::begin(Clock::time_point now, const std::vector<int>& server_pids) {
  ops_ = 0;
  latency_.reset();
  errors_.fill(0);
  bytes_sent_ = bytes_received_ = 0;
  handshakes_ = resumed_ = 0;
  begin_ = end_ = now;
  cpu_begin_ = cpu_end_ = self_cpu_seconds();
  server_begin_ = sample_all(server_pids);
  measuring_ = true;
}

void Stats::end(Clock::time_point now, const std::vector<int>& server_pids) {
  if (!measuring_) return;
  measuring_ = false;
  end_ = now;
  cpu_end_ = self_cpu_seconds();
  server_end_ = sample_all(server_pids);
}

std::uint64_t Stats::error_total() const {
  std::uint64_t total = 0;
  for (auto n : errors_) total += n;
  return total;
}

}  // namespace bench
