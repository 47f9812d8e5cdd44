#pragma once
// CPU time and memory of this process and of the server under test.

#include <cstdint>
#include <vector>

namespace bench {

struct ProcSample {
  bool ok = false;
  double cpu_seconds = 0;   // utime + stime + cutime + cstime from /proc/PID/stat
  std::uint64_t rss_kb = 0; // VmRSS from /proc/PID/status
};

// Reads /proc; ok is false when the process is gone or unreadable.
ProcSample sample_process(int pid);

// A server that runs as several processes costs what they cost together:
// CPU time and RSS summed. ok only if every one was read.
ProcSample total(const std::vector<ProcSample>& samples);

// getrusage(RUSAGE_SELF): user + system seconds of this process.
double self_cpu_seconds();

// Raises the soft open-file limit to the hard one; returns the new soft limit.
std::uint64_t raise_fd_limit();

}  // namespace bench
