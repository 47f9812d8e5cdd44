#include "proc.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace bench {

ProcSample sample_process(int pid) {
  ProcSample s;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream stat(dir + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return s;
  // The command name (field 2) may hold spaces and parentheses; the fields
  // we want are counted from after its closing parenthesis, field 3 first.
  const auto paren = line.rfind(')');
  if (paren == std::string::npos) return s;
  std::istringstream fields(line.substr(paren + 1));
  std::string field;
  unsigned long long ticks = 0;
  for (int n = 3; n <= 17 && fields >> field; ++n) {
    if (n >= 14) ticks += std::stoull(field);  // utime stime cutime cstime
  }
  s.cpu_seconds = static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));

  std::ifstream status(dir + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      s.rss_kb = std::stoull(line.substr(6));
      break;
    }
  }
  s.ok = true;
  return s;
}

ProcSample total(const std::vector<ProcSample>& samples) {
  ProcSample sum;
  sum.ok = !samples.empty();
  for (const auto& s : samples) {
    sum.ok = sum.ok && s.ok;
    sum.cpu_seconds += s.cpu_seconds;
    sum.rss_kb += s.rss_kb;
  }
  return sum;
}

double self_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

std::uint64_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

}  // namespace bench
